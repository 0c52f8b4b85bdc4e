"""Features: loudness and pitch, at frame rate."""

from .frames import Features

__all__ = ["Features"]
