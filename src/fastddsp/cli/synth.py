"""`fastddsp synth`: a features CSV -> audio."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("synth", help="features CSV (time_s,f0_hz,loudness_db) -> audio")
    s.add_argument("features", help="CSV with columns time_s,f0_hz,loudness_db at any frame rate")
    s.add_argument("--model", default="violin-tiny",
                   help="bundled model name or model file (default violin-tiny)")
    s.add_argument("-o", "--output", required=True, help="output audio file (.wav/.flac/.ogg)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..features.frames import read_features_csv
    from ..io import output_format, refuse_overwrite
    from ..models import load
    from ..pipelines.output import write_output
    from ..pipelines.synthesis import feature_chunks

    out = Path(args.output)
    refuse_overwrite(out, Path(args.features))
    output_format(out)
    model = load(args.model)
    feats = read_features_csv(args.features, frame_rate=model.frame_rate)
    chunks = feature_chunks(model, feats, seed=args.seed, where=str(args.features))
    w = write_output(out, chunks, model.sample_rate)
    print(f"wrote {out}: {w.samples / model.sample_rate:.2f} s at {model.sample_rate} Hz "
          f"played by {args.model}")
    if w.limiter_note():
        print(f"  {w.limiter_note()}")
    return 0
