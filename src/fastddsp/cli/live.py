"""`fastddsp live`: microphone -> instrument in real time, or file -> file through the same
streaming engine."""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING

from ..errors import UserError
from ..features.pitch import CAUSAL_TRACKERS
from .common import check_rate

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..models.model import Model
    from ..realtime.live import FileRun, LiveState


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
    s.add_argument("--pitch", default=None, choices=list(CAUSAL_TRACKERS),
                   help="pitch tracker: fast (YIN), net (the pitch network) or net-5ms (the "
                   "lowest latency); default: the stream's")
    s.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    s.add_argument("--input-file", help="read this audio file instead of a device")
    s.add_argument("--output-file", help="write here instead of a device (.wav, .flac, .ogg)")
    s.add_argument("--sr", type=int,
                   help="file mode: output sample rate (default: the input file's)")
    s.add_argument("--keep-latency", action="store_true",
                   help="file mode: keep the engine's latency in the output (as heard live)")
    s.add_argument("--midi", nargs="?", const="", metavar="PORT",
                   help="play the model from a MIDI keyboard (the first port, or PORT)")
    s.add_argument("--midi-file", help="play this MIDI file (or text score) through the "
                   "real-time engine: to the speakers, or to --output-file")
    s.add_argument("--voices", type=int, default=32,
                   help="MIDI: most voices at once; more notes steal the voice released "
                   "longest ago (default 32)")
    s.add_argument("--bend-range", type=float, default=2.0,
                   help="MIDI: semitones of a full pitch-wheel bend (default 2)")
    s.add_argument("--list-devices", action="store_true",
                   help="list audio devices (and MIDI inputs) and exit")
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
        with contextlib.suppress(UserError):
            from ..realtime.midi import midi_ports
            print("MIDI inputs: " + (", ".join(midi_ports()) or "none"))
        return 0
    if args.midi is not None or args.midi_file:
        return _midi(args)
    if bool(args.input_file) != bool(args.output_file):
        raise UserError("give both --input-file and --output-file, or neither")
    if args.input_file:  # no audio device: no [live] extra needed
        return _file(args, load(args.model))
    _require_sounddevice()
    return _devices(args, load(args.model))


def _midi(args: argparse.Namespace) -> int:
    from ..limits import check_voices
    from ..models import load

    if args.midi is not None and args.midi_file:
        raise UserError("give --midi (a keyboard) or --midi-file, not both")
    if args.input_file:
        raise UserError("--input-file is for audio input; a MIDI instrument has none")
    check_voices(args.voices, "--voices")
    if args.midi_file and args.output_file:
        return _midi_to_file(args, load(args.model))
    if args.output_file:
        raise UserError("--output-file needs --midi-file (a keyboard plays to the speakers)")
    _require_sounddevice()
    return _midi_to_device(args, load(args.model))


def _level_report(side: str) -> Callable[[LiveState], None]:
    """The running line a device run prints: ``side`` ("in" or "out") level, xruns, blocks."""
    from ..realtime.live import meter

    def report(state: LiveState) -> None:
        print(f"\r{side} {state.level_db:6.1f} dBFS |{meter(state.level_db)}| xruns "
              f"{state.xruns}  blocks {state.blocks}", end="", flush=True)
    return report


def _midi_to_file(args: argparse.Namespace, model: Model) -> int:
    from ..realtime.midi import play_midi_file

    check_rate(args.sr)
    r = play_midi_file(model, args.midi_file, args.output_file, args.block, args.voices,
                       args.bend_range, keep_latency=args.keep_latency, sr_out=args.sr)
    _print_file_run(r, model, args.keep_latency)
    return 0


def _midi_to_device(args: argparse.Namespace, model: Model) -> int:
    from ..realtime.live import sounddevice_module
    from ..realtime.midi import midi_port, play_midi_file_live, run_keyboard

    report = _level_report("out")
    sounddevice_module()  # say what is missing before anything is printed
    if args.midi_file:
        print(f"{args.model}: playing {args.midi_file}, blocks of {args.block} samples")
        state = play_midi_file_live(model, args.midi_file, args.block, args.voices,
                                    args.output, args.bend_range, report=report)
    else:
        port = midi_port(args.midi)
        print(f"{args.model}: {args.voices} voices from MIDI input {port}, blocks of "
              f"{args.block} samples; Ctrl-C stops")
        state = run_keyboard(model, port, args.voices, args.block, args.output,
                             args.seconds, args.bend_range, report)
    _print_stopped(state)
    return 0


def _print_file_run(r: FileRun, model: Model, keep_latency: bool) -> None:
    """What a file run through the real-time engine wrote, and its time per block."""
    from ..dsp.limiter import limiter_note

    print(f"wrote {r.output} ({r.seconds:.2f} s); latency {r.latency_samples} samples "
          f"({1000 * r.latency_samples / model.sample_rate:.1f} ms)"
          f"{'' if keep_latency else ', compensated'}")
    if note := limiter_note(r.limited_db):
        print(f"  {note}")
    t = r.timing
    if t.get("blocks"):
        print(f"{t['blocks']} blocks of {t['block_ms']:.1f} ms: processing median "
              f"{t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms, max {t['max_ms']:.3f} ms, "
              f"{t['over_budget']} over budget")


def _print_stopped(state: LiveState) -> None:
    """The end of a device run: blocks, xruns, the limiter if it acted."""
    from ..dsp.limiter import limiter_note

    print(f"\nstopped after {state.blocks} blocks, {state.xruns} xruns")
    if note := limiter_note(state.limiter.max_reduction_db):
        print(f"  {note}")


def _file(args: argparse.Namespace, model: Model) -> int:
    from ..realtime.live import stream_file

    check_rate(args.sr)
    r = stream_file(model, args.input_file, args.output_file, args.block, args.octave,
                    args.pitch_shift, args.loudness, keep_latency=args.keep_latency,
                    sr_out=args.sr, tracker=args.pitch)
    _print_file_run(r, model, args.keep_latency)
    return 0


def _devices(args: argparse.Namespace, model: Model) -> int:
    from ..realtime.live import run_live
    from ..realtime.stream import Stream

    report = _level_report("in")
    stream = Stream(model, args.block, args.octave, args.pitch_shift, args.loudness,
                    tracker=args.pitch)
    print(f"{args.model}: {model.sample_rate} Hz, blocks of {args.block} samples, latency "
          f"{stream.latency_ms:.1f} ms + buffering; Ctrl-C stops")
    state = run_live(stream, args.input, args.output, seconds=args.seconds, report=report)
    _print_stopped(state)
    return 0
