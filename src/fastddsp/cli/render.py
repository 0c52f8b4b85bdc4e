"""`fastddsp render`: a MIDI file or text score -> audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import check_rate


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("render", help="MIDI file or text score -> audio")
    s.add_argument("score", help=".mid/.midi, or text: NOTE START_S DURATION_S [VELOCITY] per line")
    s.add_argument("--model", default="violin-tiny",
                   help="bundled model name or model file (default violin-tiny)")
    s.add_argument("-o", "--output", required=True,
                   help="output audio file (.wav/.flac/.ogg)")
    s.add_argument("--sr", type=int, help="output sample rate (default: the model's)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (it shows only on a terminal anyway)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import output_format, refuse_overwrite
    from ..models import load
    from ..pipelines.output import write_output
    from ..pipelines.render import read_score, render_note_chunks
    from ..pipelines.score import score_seconds
    from ..progress import counted, seconds_bar

    out = Path(args.output)
    check_rate(args.sr)
    refuse_overwrite(out, Path(args.score))
    output_format(out)
    notes = read_score(args.score)
    model = load(args.model)
    rate = args.sr or model.sample_rate
    with seconds_bar("render", score_seconds(notes), args.quiet) as advance:
        chunks = counted(render_note_chunks(notes, model, seed=args.seed), model.sample_rate,
                         advance)
        w = write_output(out, chunks, model.sample_rate, rate)
    print(f"wrote {out}: {len(notes)} notes, {w.samples / rate:.2f} s at {rate} Hz played by "
          f"{args.model}")
    if w.limiter_note():
        print(f"  {w.limiter_note()}")
    return 0
