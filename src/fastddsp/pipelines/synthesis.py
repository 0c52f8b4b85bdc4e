"""Pipeline: features (any frame rate) -> a model's audio."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..features.frames import Features
from ..limits import check_controls
from ..models.chunked import render_chunks
from ..models.model import Model


def feature_chunks(model: Model, features: Features, seed: int = 0,
                   where: str = "the controls") -> Iterator[np.ndarray]:
    """``features`` resampled to the model's frame rate, checked against the valid control
    ranges (``limits.check_controls``) and synthesized chunk by chunk (bounded memory)."""
    feats = features.resample(model.frame_rate)
    check_controls(feats.f0_hz, feats.loudness_db, model.sample_rate, where)
    return render_chunks(model, feats.f0_hz, feats.loudness_db, seed=seed)

