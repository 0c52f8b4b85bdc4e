"""`fastddsp info`: a model's config and parameter count."""

from __future__ import annotations

import argparse
import json

from ..models.config import PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("info", help="print a model's config and parameter count")
    s.add_argument("model", help=f"model file, bundled name, or preset ({', '.join(PRESETS)})")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    if info["attribution"]:
        print(f"attribution: {info['attribution']}")
    return 0
