"""`fastddsp features`: audio -> a CSV of f0, confidence and loudness."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..features.pitch import TRACKERS


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("features", help="audio -> CSV of f0, confidence and loudness")
    s.add_argument("input", help="audio file (any format soundfile reads; any rate/channels)")
    s.add_argument("--pitch", default="crepe-full", choices=list(TRACKERS),
                   help="pitch tracker (default crepe-full: the most accurate, the features the "
                        "bundled models were trained on; about 10-20 min per minute of audio on "
                        "one CPU thread)")
    s.add_argument("--frame-rate", type=float, default=250.0, help="frames/s (default 250)")
    s.add_argument("--sample-rate", type=int, default=16000,
                   help="rate the loudness is measured at; match the model's (default 16000)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (it shows only on a terminal anyway)")
    s.add_argument("-o", "--output", required=True, help="output CSV")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..features.extract import extract_features_file
    from ..features.frames import write_features_csv
    from ..features.pitch import get_tracker
    from ..io import check_input_file, known_seconds, open_audio, refuse_overwrite
    from ..progress import seconds_bar

    out = Path(args.output)
    refuse_overwrite(out, Path(args.input))
    if args.frame_rate <= 0 or args.frame_rate > 2000:
        raise UserError("--frame-rate must be within (0, 2000] frames/s")
    check_input_file(Path(args.input), "audio file")
    with open_audio(args.input) as f:
        seconds = known_seconds(f)
    with seconds_bar(f"{args.pitch} pitch", seconds, args.quiet) as advance:
        feats = extract_features_file(args.input, pitch=args.pitch, frame_rate=args.frame_rate,
                                      loudness_rate=args.sample_rate, cache=not args.no_cache,
                                      on_block=lambda block, rate: advance(block.shape[0] / rate))
    write_features_csv(out, feats)
    threshold = get_tracker(args.pitch).voicing_threshold
    voiced = float((feats.confidence >= threshold).mean()) if feats.n_frames else 0.0
    print(f"wrote {out}: {feats.n_frames} frames at {feats.frame_rate:g}/s, "
          f"{voiced:.0%} confidently voiced")
    return 0
