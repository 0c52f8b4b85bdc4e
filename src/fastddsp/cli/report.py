"""`fastddsp report`: eval folders -> a static listening page."""

from __future__ import annotations

import argparse

from ..features.pitch import TRACKERS
from .common import add_cache_option


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("report", help="eval folders -> a static listening page (audio, "
                              "scores, spectrograms, f0/loudness plots)")
    s.add_argument("eval_dirs", nargs="+", metavar="EVAL_DIR",
                   help="folders written by `fastddsp eval ... -o EVAL_DIR`, one per model")
    s.add_argument("-o", "--output", required=True,
                   help="page folder to write (a previous report there is replaced)")
    s.add_argument("--references", help="the reference clips: audio folder or file, or prepared "
                   "data folder (default: the source each eval recorded)")
    s.add_argument("--bench", help="JSON of `fastddsp bench --json`: the speed of each model")
    s.add_argument("--measure-speed", action="store_true",
                   help="time the models the labels name when --bench has no figure for them")
    s.add_argument("--pitch", default="crepe-tiny", choices=list(TRACKERS),
                   help="pitch tracker for the f0 plots (default crepe-tiny)")
    add_cache_option(s)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pages.report import build_report

    r = build_report(args.eval_dirs, args.output, references=args.references, bench=args.bench,
                     measure=args.measure_speed, pitch=args.pitch)
    unknown = [label for label, speed in r.speeds.items() if speed is None]
    print(f"wrote {r.folder / 'index.html'}: {len(r.rows)} rows ({', '.join(r.rows)}) x "
          f"{len(r.clips)} clips")
    if unknown:
        print(f"note: no speed for {', '.join(unknown)} (give --bench FILE or --measure-speed)")
    return 0
