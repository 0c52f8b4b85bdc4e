"""Features: loudness and pitch at frame rate, with one interface over the pitch trackers."""

from .extract import extract_features
from .frames import Features
from .loudness import loudness_db
from .pitch import TRACKERS, clean_f0, track

__all__ = ["TRACKERS", "Features", "clean_f0", "extract_features", "loudness_db", "track"]
