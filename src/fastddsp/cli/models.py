"""`fastddsp models`: the bundled pretrained models."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("models", help="list the bundled pretrained models")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models import PRESETS, bundled_models, load

    print(f"{'name':16} {'preset':7} {'weights':7} {'parameters':>11} {'training audio':>15} "
          f"{'steps':>6}")
    for name in bundled_models():
        m = load(name)
        train = m.stats.get("training", {})
        print(f"{name:16} {m.config.preset:7} {'int8' if m.is_quantized else 'float32':7} "
              f"{m.decoder_parameters:11,} {m.stats.get('train_seconds', 0):14.0f}s "
              f"{train.get('steps', 0):6}")
    print(f"presets for new models: {', '.join(PRESETS)}")
    return 0
