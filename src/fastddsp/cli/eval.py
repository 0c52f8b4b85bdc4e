"""`fastddsp eval`: resynthesize clips and score them against the originals."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..features.pitch import TRACKERS
from .common import add_cache_option

if TYPE_CHECKING:
    from ..training.evaluate import EvalReport


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("eval",
                              help="resynthesize clips and score them against the originals")
    s.add_argument("model", help="model (name or file), or a folder of existing outputs")
    s.add_argument("source", help="prepared data folder, audio folder, or audio file")
    s.add_argument("-o", "--output", help="folder for the resynthesized wavs and scores.json")
    s.add_argument("--split", default="val", choices=["val", "train", "all"],
                   help="which files of a data folder (default val)")
    s.add_argument("--tag", help="outputs mode: score OUTPUTS/<stem>.<tag>.wav")
    s.add_argument("--pitch", default="crepe-tiny", choices=list(TRACKERS),
                   help="tracker used to compare f0 (default crepe-tiny)")
    s.add_argument("--features-pitch", default=["crepe-full"], nargs="+",
                   choices=list(TRACKERS), metavar="TRACKER",
                   help="tracker(s) for the features of plain audio sources: several score "
                   "the model once per tracker (outputs in OUTPUT/<tracker>/), as users' "
                   f"features differ by tracker; one of {', '.join(TRACKERS)} "
                   "(default crepe-full)")
    add_cache_option(s)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..models import load
    from ..training.data import MANIFEST
    from ..training.evaluate import evaluate_model, evaluate_outputs

    target = Path(args.model)
    if target.is_dir():
        _print(evaluate_outputs(target, args.source, tag=args.tag, score_pitch=args.pitch,
                                out_dir=args.output))
        return 0
    trackers = list(dict.fromkeys(args.features_pitch))
    if len(trackers) > 1 and (Path(args.source) / MANIFEST).is_file():
        raise UserError("a prepared data folder carries its own features: --features-pitch "
                        "with several trackers needs audio files as SOURCE")
    model, means = load(args.model), {}
    for tracker in trackers:
        out = args.output if args.output is None or len(trackers) == 1 else \
            str(Path(args.output) / tracker)
        report = evaluate_model(model, args.source, out_dir=out, split=args.split,
                                features_pitch=tracker, score_pitch=args.pitch,
                                label=target.stem)
        _print(report)
        means[tracker] = report.mean()
    if len(trackers) > 1:
        print("per tracker: " + ", ".join(f"{t} {m['spectral_distance']:.3f} spectral, "
                                          f"{m['loudness_l1_db']:.2f} dB"
                                          for t, m in means.items()))
    return 0


def _print(report: EvalReport) -> None:
    if "scored" in report.origin:
        print(f"scored: {report.origin['scored']}")
    print(f"{'clip':24} {'spectral':>9} {'loud L1 dB':>10} {'f0 L1 st':>9} {'outliers':>9}")
    for c in report.clips:
        print(f"{c.name[:24]:24} {c.spectral_distance:9.3f} {c.loudness_l1_db:10.2f} "
              f"{c.f0_l1_semitones:9.3f} {c.outlier_ratio:9.1%}")
    m = report.mean()
    print(f"{'mean':24} {m['spectral_distance']:9.3f} {m['loudness_l1_db']:10.2f} "
          f"{m['f0_l1_semitones']:9.3f} {m['outlier_ratio']:9.1%}")
