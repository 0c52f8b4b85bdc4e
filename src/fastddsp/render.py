"""`fastddsp render`: a MIDI file or a text score -> expressive f0/loudness curves -> audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError
from .features.loudness import shifted_loudness
from .models.chunked import render_chunks
from .models.model import Model
from .score import Note, notes_to_features, read_midi, read_text_score


def read_score(path: str | Path) -> list[Note]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"score {path} does not exist or is not a file")
    try:
        if path.suffix.lower() in (".mid", ".midi"):
            return read_midi(str(path))
        return read_text_score(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read score {path}: {e}") from None


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
    feats = notes_to_features(notes, model.frame_rate)
    return np.concatenate(list(render_chunks(model, feats.f0_hz,
                                             score_loudness(feats.loudness_db, model),
                                             seed=seed)))
