"""`fastddsp quantize`: int8 static quantization of a CNN model's decoder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("quantize", help="int8 static quantization of a CNN model's decoder")
    s.add_argument("model", help="a float cnn or tiny model (name or file)")
    s.add_argument("data_dir", help="prepared data folder: its training clips calibrate")
    s.add_argument("-o", "--output", required=True, help="int8 model file (.fddsp)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import refuse_overwrite
    from ..models import load, model_file
    from ..training.quantize import quantize_model

    refuse_overwrite(Path(args.output), model_file(args.model))
    q = quantize_model(load(args.model), args.data_dir)
    path = q.save(args.output)
    print(f"wrote {path}: int8 decoder calibrated on the training clips of {args.data_dir}")
    return 0
