"""`fastddsp transfer`: recordings -> the same melody played by an instrument."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..features.pitch import TRACKERS
from .common import add_cache_option, check_rate

if TYPE_CHECKING:
    from ..models.model import Model


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("transfer", help="recordings -> the same melody on an instrument")
    s.add_argument("inputs", nargs="+", metavar="IN", help="audio files (any format/rate)")
    s.add_argument("--model", default="violin-tiny",
                   help="bundled model name or model file (default violin-tiny)")
    s.add_argument("-o", "--output", help="output file, or folder for several inputs "
                   "(default: IN's folder, IN.MODEL.wav)")
    s.add_argument("--octave", default="auto",
                   help="auto (default): the smallest whole-octave shift that brings the melody "
                        "into the model's training range, none when it fits; or N octaves")
    s.add_argument("--pitch-shift", type=float, default=0.0,
                   help="extra semitones, within ±24 (default 0)")
    s.add_argument("--loudness", default="auto",
                   help="auto (default: the input's dynamics mapped onto the training set's), "
                        "none, or dB within ±60")
    s.add_argument("--pitch", default="crepe-tiny", choices=list(TRACKERS),
                   help="pitch tracker (default crepe-tiny: 4.5x real time on 1 thread; "
                        "crepe-full, the default of features and prepare, is the most accurate "
                        "and about 50x slower)")
    s.add_argument("--poly", action="store_true",
                   help="polyphonic input (piano, guitar, choir): transcribe every note with "
                   "Basic Pitch (pip install --no-deps basic-pitch) and play them on the "
                   "model's voices; --loudness and --pitch do not apply")
    s.add_argument("--voices", type=int, default=64,
                   help="--poly: most notes at once (default 64)")
    s.add_argument("--sr", type=int, help="output sample rate (default: the input's)")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (they show only on a terminal anyway)")
    add_cache_option(s)
    s.set_defaults(func=run)


def _outputs(inputs: list[Path], output: str | None, model: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: beside each input by default, else in or at ``output``."""
    out = Path(output) if output else None
    if len(inputs) > 1 and out is not None and out.suffix:
        raise UserError("with several inputs, -o must be a folder")
    pairs = []
    for src in inputs:
        if out is None:
            dst = src.with_name(f"{src.stem}.{Path(model).stem}.wav")
        elif len(inputs) > 1 or out.is_dir():
            dst = out / f"{src.stem}.{Path(model).stem}.wav"
        else:
            dst = out
        pairs.append((src, dst))
    return pairs


def _poly(args: argparse.Namespace, model: Model, octave: str | int,
          pairs: list[tuple[Path, Path]]) -> int:
    from ..pipelines.poly_transfer import poly_transfer_file
    from ..progress import seconds_bar

    if args.loudness != "auto" or args.pitch != "crepe-tiny":
        raise UserError("--poly transcribes notes: --loudness and --pitch do not apply")
    for src, dst in pairs:
        r = poly_transfer_file(src, dst, model, octave, args.pitch_shift, args.voices, args.sr,
                               progress=lambda desc, s: seconds_bar(desc, s, args.quiet))
        print(f"wrote {r.output}: {r.seconds:.2f} s at {r.sample_rate} Hz, {r.notes} notes "
              f"(up to {r.voices} at once) played by {args.model} (octave shift "
              f"{r.octaves:+d}{' chosen by --octave auto' if octave == 'auto' else ''}, pitch "
              f"shift {args.pitch_shift:+g} st)")
        if r.limiter_note:
            print(f"  {r.limiter_note}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..features.adjust import parse_loudness, parse_octave
    from ..io import check_outputs
    from ..limits import check_adjustment
    from ..models import load
    from ..pipelines.transfer import transfer_file
    from ..progress import seconds_bar

    inputs = [Path(p) for p in args.inputs]
    model = load(args.model)
    octave, loudness = parse_octave(args.octave), parse_loudness(args.loudness)
    check_adjustment(octave, args.pitch_shift, loudness)  # before minutes of pitch tracking
    check_rate(args.sr)
    pairs = _outputs(inputs, args.output, args.model)
    check_outputs(pairs)  # before anything is written
    if args.poly:
        return _poly(args, model, octave, pairs)
    for src, dst in pairs:
        r = transfer_file(str(src), str(dst), model, octave=octave,
                          pitch_shift=args.pitch_shift, loudness=loudness, pitch=args.pitch,
                          sr_out=args.sr,
                          progress=lambda desc, s: seconds_bar(desc, s, args.quiet))
        a = r.adjustment
        print(f"wrote {r.output}: {r.seconds:.2f} s at {r.sample_rate} Hz played by "
              f"{args.model} (octave shift {a.octaves:+d}"
              f"{' chosen by --octave auto' if octave == 'auto' else ''}, pitch shift "
              f"{a.semitones:+g} st, loudness {a.loudness_mode}, {a.voiced_share:.0%} voiced)")
        if r.matched_db is not None:
            print(f"  at the input's loudness ({r.matched_db:+.1f} dB)")
        if r.limiter_note:
            print(f"  {r.limiter_note}")
    return 0
