"""The `fastddsp` command: parse arguments, call the API, print. No logic of its own.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"fastddsp: error: {message}\n")


def _refuse_overwrite_input(out: Path, *inputs: Path) -> None:
    for i in inputs:
        if i.exists() and out.exists() and out.resolve() == i.resolve():
            raise UserError(f"output {out} is the input file; refusing to overwrite it")


def cmd_synth(args: argparse.Namespace) -> int:
    from ..io import read_features_csv, write_audio
    from ..models import load
    from ..synthesis import synthesize_features

    out = Path(args.output)
    _refuse_overwrite_input(out, Path(args.features))
    feats = read_features_csv(args.features)
    model = load(args.model)
    audio = synthesize_features(model, feats, seed=args.seed)
    write_audio(out, audio, model.sample_rate)
    print(f"wrote {out} ({audio.size / model.sample_rate:.2f} s at {model.sample_rate} Hz)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..models import resolve

    info = resolve(args.model).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    cfg = info["config"]
    print(f"decoder_parameters: {info['decoder_parameters']:,}")
    print(f"frame_rate: {info['frame_rate']:g} frames/s")
    past, ahead = info["receptive_field_frames"]
    print(f"receptive_field: {'unbounded' if past < 0 else past} frames past, {ahead} ahead")
    for key, value in cfg.items():
        print(f"{key}: {value}")
    if info["stats"]:
        print(f"stats: {', '.join(sorted(info['stats']))}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from ..features import extract_features
    from ..io import read_audio, write_features_csv

    out = Path(args.output)
    _refuse_overwrite_input(out, Path(args.input))
    if args.frame_rate <= 0 or args.frame_rate > 2000:
        raise UserError("--frame-rate must be within (0, 2000] frames/s")
    audio, sr = read_audio(args.input)
    feats = extract_features(audio, sr, pitch=args.pitch, frame_rate=args.frame_rate,
                             loudness_rate=args.sample_rate, cache=not args.no_cache)
    write_features_csv(out, feats)
    voiced = float((feats.confidence >= 0.5).mean()) if feats.n_frames else 0.0
    print(f"wrote {out}: {feats.n_frames} frames at {feats.frame_rate:g}/s, "
          f"{voiced:.0%} confidently voiced")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    result = run_demo(args.output)
    for label, wav in result.rows:
        print(f"{label}: {wav}")
    print(f"open {result.folder / 'index.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ..features.pitch import TRACKERS
    from ..models.config import PRESETS

    p = _Parser(prog="fastddsp", description="Fast DDSP instrument synthesis.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("synth", help="features CSV (time_s,f0_hz,loudness_db) -> audio")
    s.add_argument("features", help="CSV with columns time_s,f0_hz,loudness_db at any frame rate")
    s.add_argument("--model", required=True, help="bundled model name or model file")
    s.add_argument("-o", "--output", required=True, help="output audio file (.wav/.flac/.ogg)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("features", help="audio -> CSV of f0, confidence and loudness")
    s.add_argument("input", help="audio file (any format soundfile reads; any rate/channels)")
    s.add_argument("--pitch", default="crepe-full", choices=list(TRACKERS),
                   help="pitch tracker (default crepe-full)")
    s.add_argument("--frame-rate", type=float, default=250.0, help="frames/s (default 250)")
    s.add_argument("--sample-rate", type=int, default=16000,
                   help="rate the loudness is measured at; match the model's (default 16000)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    s.add_argument("-o", "--output", required=True, help="output CSV")
    s.set_defaults(func=cmd_features)

    s = sub.add_parser("info", help="print a model's config and parameter count")
    s.add_argument("model", help=f"model file, bundled name, or preset ({', '.join(PRESETS)})")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("demo", help="render the built-in melody through the bundled models")
    s.add_argument("-o", "--output", default="fastddsp-demo", help="output folder")
    s.set_defaults(func=cmd_demo)
    return p


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UserError as e:
        print(f"fastddsp: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
    except KeyboardInterrupt:
        print("fastddsp: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("fastddsp: error: out of memory", file=sys.stderr)
        return 1
    except Exception as e:  # an internal failure: still one line, still no partial output
        print(f"fastddsp: internal error: {type(e).__name__}: {e}".splitlines()[0],
              file=sys.stderr)
        return 1


def main() -> None:
    sys.exit(run())
