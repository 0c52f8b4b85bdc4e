"""`fastddsp live`: microphone -> instrument in real time, or file -> file through the same
streaming engine."""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING

from ..errors import UserError
from .common import check_rate

if TYPE_CHECKING:
    from ..models.model import Model
    from ..realtime.live import LiveState


def _device(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("live", help="microphone -> instrument in real time (or file -> "
                              "file through the same streaming engine)")
    s.add_argument("--model", default="violin-tiny",
                   help="bundled model name or model file (default violin-tiny)")
    s.add_argument("--input", type=_device, help="input device (index or name)")
    s.add_argument("--output", type=_device, help="output device (index or name)")
    s.add_argument("--block", type=int, default=256, help="block size in samples (default 256)")
    s.add_argument("--octave", type=int, default=0, help="octaves to shift the pitch")
    s.add_argument("--pitch-shift", type=float, default=0.0, help="semitones to add")
    s.add_argument("--loudness", type=float, default=0.0, help="dB to add to the loudness")
    s.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    s.add_argument("--input-file", help="read this audio file instead of a device")
    s.add_argument("--output-file", help="write here instead of a device (.wav, .flac, .ogg)")
    s.add_argument("--sr", type=int,
                   help="file mode: output sample rate (default: the input file's)")
    s.add_argument("--keep-latency", action="store_true",
                   help="file mode: keep the engine's latency in the output (as heard live)")
    s.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    s.set_defaults(func=run)


def _require_sounddevice() -> None:
    """Audio devices need the [live] extra: a missing one is reported by its install command
    (``cli.main``) before a model is loaded. A sounddevice without its PortAudio library is
    left to ``realtime.live``, which says how to install that."""
    with contextlib.suppress(OSError):
        import sounddevice  # noqa: F401


def run(args: argparse.Namespace) -> int:
    from ..models import load
    from ..realtime.live import list_devices

    if args.list_devices:
        _require_sounddevice()
        print(list_devices())
        return 0
    if bool(args.input_file) != bool(args.output_file):
        raise UserError("give both --input-file and --output-file, or neither")
    if args.input_file:  # no audio device: no [live] extra needed
        return _file(args, load(args.model))
    _require_sounddevice()
    return _devices(args, load(args.model))


def _file(args: argparse.Namespace, model: Model) -> int:
    from ..dsp.limiter import limiter_note
    from ..realtime.live import stream_file

    check_rate(args.sr)
    r = stream_file(model, args.input_file, args.output_file, args.block, args.octave,
                    args.pitch_shift, args.loudness, keep_latency=args.keep_latency,
                    sr_out=args.sr)
    t = r.timing
    print(f"wrote {r.output} ({r.seconds:.2f} s); latency {r.latency_samples} samples "
          f"({1000 * r.latency_samples / model.sample_rate:.1f} ms)"
          f"{'' if args.keep_latency else ', compensated'}")
    if note := limiter_note(r.limited_db):
        print(f"  {note}")
    if t.get("blocks"):
        print(f"{t['blocks']} blocks of {t['block_ms']:.1f} ms: processing median "
              f"{t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms, max {t['max_ms']:.3f} ms, "
              f"{t['over_budget']} over budget")
    return 0


def _devices(args: argparse.Namespace, model: Model) -> int:
    from ..dsp.limiter import limiter_note
    from ..realtime.live import meter, run_live
    from ..realtime.stream import Stream

    def report(state: LiveState) -> None:
        print(f"\rin {state.level_db:6.1f} dBFS |{meter(state.level_db)}| xruns {state.xruns}"
              f"  blocks {state.blocks}", end="", flush=True)

    stream = Stream(model, args.block, args.octave, args.pitch_shift, args.loudness)
    print(f"{args.model}: {model.sample_rate} Hz, blocks of {args.block} samples, latency "
          f"{stream.latency_ms:.1f} ms + buffering; Ctrl-C stops")
    state = run_live(stream, args.input, args.output, seconds=args.seconds, report=report)
    print(f"\nstopped after {state.blocks} blocks, {state.xruns} xruns")
    if note := limiter_note(state.limiter.max_reduction_db):
        print(f"  {note}")
    return 0
