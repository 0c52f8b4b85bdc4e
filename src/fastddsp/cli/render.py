"""`fastddsp render`: a MIDI file or text score -> audio."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from .common import check_rate


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("render", help="MIDI file or text score -> audio (every note: "
                              "chords, overlapping notes, several tracks)")
    s.add_argument("score", help=".mid/.midi, or text: NOTE START_S DURATION_S [VELOCITY] per line")
    s.add_argument("--model", default="violin-tiny",
                   help="bundled model name or model file (default violin-tiny); per track: "
                   "TRACK=MODEL,... (TRACK: the track's name or number), one bare MODEL as "
                   "the default for the rest")
    s.add_argument("-o", "--output", required=True,
                   help="output audio file (.wav/.flac/.ogg)")
    s.add_argument("--sr", type=int, help="output sample rate (default: the model's)")
    s.add_argument("--voices", type=int, default=64,
                   help="most voices a track plays at once; more notes steal the voice "
                   "released longest ago (default 64)")
    s.add_argument("--bend-range", type=float, default=2.0,
                   help="semitones of a full pitch-wheel bend (default 2)")
    s.add_argument("--mono", action="store_true",
                   help="one expressive line instead: every note of every track in one voice, "
                   "with glides between notes")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (it shows only on a terminal anyway)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import output_format, refuse_overwrite
    from ..limits import check_voices
    from ..models import load
    from ..pipelines.output import write_output
    from ..pipelines.render import (
        read_score,
        read_score_tracks,
        render_note_chunks,
        render_score_chunks,
        track_models,
    )
    from ..pipelines.score import score_seconds
    from ..pipelines.voices import tracks_seconds
    from ..progress import counted, seconds_bar

    out = Path(args.output)
    check_rate(args.sr)
    check_voices(args.voices, "--voices")
    refuse_overwrite(out, Path(args.score))
    output_format(out)
    if args.mono:
        notes = read_score(args.score)
        model = load(args.model)
        seconds, what = score_seconds(notes), f"{len(notes)} notes in one line"
        chunks = render_note_chunks(notes, model, seed=args.seed)
        players = args.model
    else:
        tracks = read_score_tracks(args.score, args.bend_range)
        names = track_models(tracks, args.model)
        loaded = {name: load(name) for name in dict.fromkeys(names)}
        model = loaded[names[0]]
        count = sum(e.kind == "on" for t in tracks for e in t.events)
        seconds = tracks_seconds([t.events for t in tracks], model.frame_rate)
        what = f"{count} notes in {len(tracks)} track{'s' * (len(tracks) > 1)}"
        chunks = render_score_chunks(tracks, [loaded[n] for n in names], args.voices,
                                     args.seed)
        players = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in Counter(names).items())
    rate = args.sr or model.sample_rate
    with seconds_bar("render", seconds, args.quiet) as advance:
        w = write_output(out, counted(chunks, model.sample_rate, advance), model.sample_rate,
                         rate)
    print(f"wrote {out}: {what}, {w.samples / rate:.2f} s at {rate} Hz played by {players}")
    if w.limiter_note():
        print(f"  {w.limiter_note()}")
    return 0
