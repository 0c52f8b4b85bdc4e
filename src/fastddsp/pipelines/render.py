"""`fastddsp render`: a MIDI file or a text score -> audio. Every note is played: each part
(MIDI track) by its model's voices (``pipelines.voices``), all parts mixed; or, with
``mono``, all notes as one expressive line (glides between notes) through one chain."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import UserError
from ..limits import BEND_RANGE_MAX, MAX_SECONDS
from ..models.chunked import render_chunks
from ..models.model import Model
from .score import (
    BEND_RANGE,
    Note,
    Track,
    check_notes,
    note_events,
    notes_to_features,
    read_midi,
    read_midi_tracks,
    read_text_score,
    score_loudness,
)
from .voices import render_tracks

DEFAULT_MODEL = "violin-tiny"
T = TypeVar("T")


def read_score(path: str | Path) -> list[Note]:
    """The notes of a MIDI file (.mid, .midi) or a text score, checked against the valid
    ranges (``score.check_notes``); any problem is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"score {path} does not exist or is not a file")
    midi = path.suffix.lower() in (".mid", ".midi")
    try:
        return check_notes(_midi_notes(path)) if midi else read_text_score(_score_text(path))
    except ValueError as e:
        raise UserError(f"score {path}: {e}") from None


def read_score_tracks(path: str | Path, bend_range: float = BEND_RANGE) -> list[Track]:
    """The parts of a MIDI file (``score.read_midi_tracks``), or a text score as one part
    named "score"; any problem is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"score {path} does not exist or is not a file")
    if not (math.isfinite(bend_range) and 0 < bend_range <= BEND_RANGE_MAX):
        raise UserError(f"the pitch-bend range must be within (0, {BEND_RANGE_MAX:g}] semitones")
    if path.suffix.lower() not in (".mid", ".midi"):
        try:
            return [Track("score", note_events(read_text_score(_score_text(path))))]
        except ValueError as e:
            raise UserError(f"score {path}: {e}") from None
    try:
        tracks = _midi(path, lambda p: read_midi_tracks(p, bend_range))
    except ValueError as e:
        raise UserError(f"score {path}: {e}") from None
    last = max(e.time_s for t in tracks for e in t.events)
    if last > MAX_SECONDS:
        raise UserError(f"score {path}: ends at {last:.6g} s; a score may last at most "
                        f"{MAX_SECONDS:g} s ({MAX_SECONDS / 3600:g} h)")
    return tracks


def track_models(tracks: list[Track], spec: str) -> list[str]:
    """Which model plays each track: ``spec`` is a model, or comma-separated ``TRACK=MODEL``
    items (TRACK: a track's name, its number from 1, or ``trackN``) with at most one bare
    model as the default for the rest (else violin-tiny)."""
    default, named = None, {}
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            if default is not None:
                raise UserError(f"--model {spec!r}: give one default model at most (the "
                                f"others as TRACK=MODEL)")
            default = item
        elif not key.strip() or not value.strip():
            raise UserError(f"--model {spec!r}: {item!r} is not TRACK=MODEL")
        else:
            named[key.strip().lower()] = value.strip()
    chosen, used = [], set()
    for i, track in enumerate(tracks, 1):
        keys = [k for k in (track.name.lower(), str(i), f"track{i}") if k in named]
        used.update(keys)
        chosen.append(named[keys[0]] if keys else default or DEFAULT_MODEL)
    if unknown := sorted(set(named) - used):
        have = ", ".join(f"{i}={t.name}" for i, t in enumerate(tracks, 1))
        raise UserError(f"--model names {', '.join(unknown)}, which the score does not have "
                        f"(its tracks: {have})")
    return chosen


def render_score_chunks(tracks: list[Track], models: list[Model], voices: int | None = None,
                        seed: int = 0) -> Iterator[np.ndarray]:
    """Every note of every track, each track through its model's voices (at most ``voices``
    a track), mixed; in chunks, memory bounded for any length (``voices.render_tracks``)."""
    return render_tracks([(t.events, m) for t, m in zip(tracks, models, strict=True)],
                         voices, seed)


def _midi_notes(path: Path) -> list[Note]:
    return _midi(path, read_midi)


def _midi(path: Path, read: Callable[[str], T]) -> T:
    try:
        return read(str(path))
    except Exception as e:  # mido raises many kinds on a damaged file (even ZeroDivision)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"cannot read {path} as a MIDI file: {reason}") from None


def _score_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is neither a MIDI file (.mid, .midi) nor a text score "
                        f"(NOTE START_S DURATION_S [VELOCITY] per line)") from None
    except OSError as e:
        raise UserError(f"cannot read score {path}: {e.strerror or e}") from None


def render_notes(notes: list[Note], model: Model, seed: int = 0) -> np.ndarray:
    """Notes -> expressive pitch and loudness curves at the model's level -> audio."""
    return np.concatenate(list(render_note_chunks(notes, model, seed)))


def render_note_chunks(notes: list[Note], model: Model, seed: int = 0) -> Iterator[np.ndarray]:
    """``render_notes`` chunk by chunk (``models.chunked.render_chunks``): the audio of a
    score of any length in memory bounded by a chunk (the frame-rate curves, 1/64 of the
    audio's size, are kept whole)."""
    feats = notes_to_features(check_notes(list(notes)), model.frame_rate)
    return render_chunks(model, feats.f0_hz, score_loudness(feats.loudness_db, model),
                         seed=seed)
