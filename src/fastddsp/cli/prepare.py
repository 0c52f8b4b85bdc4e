"""`fastddsp prepare`: an audio folder -> a training data folder."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..features.pitch import TRACKERS
from .common import add_cache_option


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("prepare", help="audio folder -> training data folder")
    s.add_argument("audio_dir", help="folder searched recursively for audio files")
    s.add_argument("-o", "--output", required=True, help="data folder to write (or update)")
    s.add_argument("--pitch", default="crepe-full", choices=list(TRACKERS),
                   help="pitch tracker of the training features (default crepe-full: the most "
                        "accurate; a model learns whatever its tracker gives it; cached)")
    s.add_argument("--sample-rate", type=int, default=16000,
                   help="the model's sample rate: audio is resampled to it (default 16000)")
    s.add_argument("--frame-rate", type=float, default=250.0,
                   help="control frames per second (default 250)")
    s.add_argument("--pitch-rate", type=float, metavar="FPS",
                   help="track pitch at this many frames/s and interpolate it onto the control "
                        "frames (default: the frame rate; 100 makes CREPE 2.5x cheaper)")
    s.add_argument("--example-seconds", type=float, default=4.0,
                   help="length of a training example (default 4)")
    s.add_argument("--hop-seconds", type=float, default=1.0,
                   help="start of one example to the next (default 1: examples overlap)")
    s.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of files held out for validation (default 0.1, at least one)")
    s.add_argument("--val", action="append", metavar="FILE",
                   help="hold out this file (path relative to AUDIO_DIR); repeatable")
    s.add_argument("--attribution", metavar="TEXT",
                   help="credit the recordings' licence asks for (CC BY: author, title, "
                   "licence, source), carried by every model trained on this folder "
                   "(default: the text of AUDIO_DIR/ATTRIBUTION.txt, if any)")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (it shows only on a terminal anyway)")
    add_cache_option(s)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..progress import progress_bar
    from ..training.data import prepare_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = prepare_dataset(args.audio_dir, args.output, sample_rate=args.sample_rate,
                            frame_rate=args.frame_rate, pitch=args.pitch,
                            example_seconds=args.example_seconds, hop_seconds=args.hop_seconds,
                            val_fraction=args.val_fraction, val_names=args.val or (),
                            progress=progress_bar("prepare", args.quiet),
                            attribution=args.attribution, pitch_rate=args.pitch_rate)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"{s.data_dir}: {s.processed} processed, {s.reused} unchanged, "
          f"{len(s.skipped)} skipped; train {s.train_examples} examples "
          f"({s.train_seconds:.1f} s), validation {s.val_examples} examples "
          f"({s.val_seconds:.1f} s)")
    return 0
