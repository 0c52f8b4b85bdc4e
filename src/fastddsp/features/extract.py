"""Audio -> ``Features`` (f0, confidence, loudness at a frame rate), with a content-hash cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from .frames import Features
from .loudness import frame_centres, loudness_db
from .pitch import PITCH_RATE, clean_f0, get_tracker

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("FASTDDSP_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastddsp" / "features"


def _resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from ..io import resample
    return resample(audio, sr_in, sr_out)


def _cache_key(audio: np.ndarray, sample_rate: int, settings: dict) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    h.update(json.dumps({"sr": sample_rate, "v": CACHE_VERSION, **settings},
                        sort_keys=True).encode())
    return h.hexdigest()


def extract_features(audio: np.ndarray, sample_rate: int, pitch: str = "crepe-full",
                     frame_rate: float = 250.0, loudness_rate: int = 16000,
                     cache: bool | str | Path = True) -> Features:
    """Mono ``audio`` at ``sample_rate`` -> features at ``frame_rate`` frames/s.

    Loudness is computed at ``loudness_rate`` (the model's sample rate), pitch at 16 kHz; f0
    is cleaned (unvoiced frames hold the last voiced pitch; the raw confidence is kept).
    Results are cached under the content hash of the audio and the settings."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise UserError("the audio is empty")
    if not np.all(np.isfinite(audio)):
        raise UserError("the audio contains NaN or infinite samples")
    tracker = get_tracker(pitch)
    settings = {"pitch": pitch, "frame_rate": frame_rate, "loudness_rate": loudness_rate}
    cache_file = None
    if cache:
        folder = default_cache_dir() if cache is True else Path(cache)
        cache_file = folder / f"{_cache_key(audio, sample_rate, settings)}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file) as z:
                    return Features(z["f0_hz"], z["loudness_db"], z["confidence"],
                                    float(z["frame_rate"]))
            except (OSError, ValueError, KeyError):
                cache_file.unlink(missing_ok=True)  # damaged entry: recompute

    duration = audio.size / sample_rate
    n_frames = frame_centres(round(duration * loudness_rate), loudness_rate, frame_rate).size
    ld = loudness_db(_resample(audio, sample_rate, loudness_rate), loudness_rate, frame_rate)
    audio16 = _resample(audio, sample_rate, PITCH_RATE)
    centres16 = np.round(np.arange(n_frames) * PITCH_RATE / frame_rate).astype(np.int64)
    f0_raw, conf = tracker.run(audio16, centres16)
    n = min(n_frames, ld.size, f0_raw.size)
    f0 = clean_f0(f0_raw[:n], conf[:n], tracker.voicing_threshold)
    feats = Features(f0, ld[:n].astype(np.float32), conf[:n].astype(np.float32), frame_rate)

    if cache_file is not None:
        try:
            with atomic_path(cache_file, suffix=".npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, f0_hz=feats.f0_hz, loudness_db=feats.loudness_db,
                         confidence=feats.confidence, frame_rate=frame_rate)
        except OSError:
            pass  # a read-only cache is not an error
    return feats
