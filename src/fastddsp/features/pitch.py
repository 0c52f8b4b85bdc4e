"""Pitch trackers behind one interface, and voicing cleanup.

Every tracker works on 16 kHz mono audio and returns (f0 Hz, confidence in [0, 1]) for frames
centred on given sample indices. ``TRACKERS`` is the one registry the CLI takes its choices from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ..errors import UserError
from . import crepe, pitchnet
from .adjust import hold_voiced
from .yin import Yin

PITCH_RATE = 16000


@dataclass(frozen=True)
class Tracker:
    name: str
    description: str
    voicing_threshold: float     # confidence at or above which a frame counts as voiced
    run: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _crepe(model: str) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return lambda audio, centres: crepe.crepe_pitch(audio, centres, model)


FAST = Yin()

TRACKERS: dict[str, Tracker] = {t.name: t for t in (
    Tracker("crepe-full", "CREPE full (22M parameters), Viterbi: most accurate, slow on CPU",
            0.5, _crepe("full")),
    Tracker("crepe-tiny", "CREPE tiny (487k parameters), Viterbi", 0.5, _crepe("tiny")),
    Tracker("fast", "YIN with cosine lag refinement: >100x real time, causal-capable",
            0.8, FAST.pitch),
    Tracker("net", "a small causal network distilled from CREPE-full, the stream's: "
            "16 ms look-ahead", 0.5, partial(pitchnet.net_pitch, weights="net")),
    Tracker("net-5ms", "the same network trained for 5 ms look-ahead (the lowest-latency "
            "stream)", 0.5, partial(pitchnet.net_pitch, weights="net-5ms")),
)}


# the trackers the streaming engine can run (frame by frame, causally)
CAUSAL_TRACKERS = ("fast", "net", "net-5ms")


def tracker_weights(name: str) -> dict[str, str]:
    """What identifies a tracker's weights beyond its name, for cache keys: a pitch network's
    digest (so a retrained network never reads features cached from the old one)."""
    if name in pitchnet.NETWORKS:
        return {"weights": pitchnet.weights_digest(name)}
    return {}


def get_tracker(name: str) -> Tracker:
    if name not in TRACKERS:
        raise UserError(f"unknown pitch tracker {name!r}; choose from {', '.join(TRACKERS)}")
    return TRACKERS[name]


def track(audio16k: np.ndarray, centres: np.ndarray, tracker: str) -> tuple[np.ndarray, np.ndarray]:
    return get_tracker(tracker).run(audio16k, centres)


def clean_f0(f0: np.ndarray, confidence: np.ndarray, threshold: float,
             causal: bool = False) -> np.ndarray:
    """f0 safe to synthesize: unvoiced frames (confidence below ``threshold``) hold the last
    voiced f0, so the oscillator never jumps to a spurious estimate in noise or silence. Offline,
    frames before the first voiced one take its f0; causally they take the first estimate.
    A signal with no voiced frame keeps its raw median f0."""
    f0 = np.asarray(f0, dtype=np.float32)
    voiced = np.asarray(confidence) >= threshold
    if f0.size == 0:
        return f0
    if not voiced.any():
        return np.full_like(f0, float(np.median(f0)))
    first = int(np.argmax(voiced))
    held = torch.tensor([f0[0] if causal else f0[first]])
    return hold_voiced(torch.from_numpy(f0)[None], torch.from_numpy(voiced)[None],
                       held)[0].numpy()
