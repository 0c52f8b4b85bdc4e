"""`fastddsp render`: a MIDI file or a text score -> expressive f0/loudness curves -> audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError
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


def render_notes(notes: list[Note], model: Model, seed: int = 0) -> np.ndarray:
    feats = notes_to_features(notes, model.frame_rate)
    return np.concatenate(list(render_chunks(model, feats.f0_hz, feats.loudness_db,
                                             seed=seed)))
