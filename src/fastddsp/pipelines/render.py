"""`fastddsp render`: a MIDI file or a text score -> expressive f0/loudness curves -> audio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..features.loudness import shifted_loudness
from ..models.chunked import render_chunks
from ..models.model import Model
from .score import Note, check_notes, notes_to_features, read_midi, read_text_score


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


def _midi_notes(path: Path) -> list[Note]:
    try:
        return read_midi(str(path))
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


FULL_VELOCITY_QUANTILE = 0.9  # of the training set's loudness: where velocity 1.0 plays


def score_loudness(loudness_db: np.ndarray, model: Model) -> np.ndarray:
    """A score's loudness (velocity 1.0 at -20 dB, silence at -80 dB) placed in the model's
    training range: full velocity at the training set's 90th loudness percentile, softer notes
    as many dB below it as before, silence left at -80 dB. Without training statistics (an
    untrained preset) the score's loudness is kept."""
    q = (model.stats.get("loudness_db") or {}).get("quantiles")
    if not q:
        return loudness_db
    top = float(np.interp(FULL_VELOCITY_QUANTILE, np.linspace(0.0, 1.0, len(q)), q))
    return shifted_loudness(loudness_db, top + 20.0).astype(np.float32)


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
