"""Pipeline: features (any frame rate) -> a model's audio."""

from __future__ import annotations

import numpy as np

from .features.frames import Features
from .models.model import Model


def synthesize_features(model: Model, features: Features, seed: int = 0) -> np.ndarray:
    """Resample ``features`` to the model's frame rate and synthesize them."""
    feats = features.resample(model.frame_rate)
    return model.synthesize(feats.f0_hz, feats.loudness_db, seed=seed)
