"""Feature adjustments for timbre transfer, one implementation for offline and streaming.

The per-frame steps are torch functions that TorchScript compiles (the streaming engine calls
them block by block); the offline ``adjust_features`` and ``pitch.clean_f0`` call the same
functions on whole arrays. Offline adjustments (as DDSP's timbre-transfer demo does):

- octave ``"auto"``: the smallest whole-octave shift that brings the melody inside the
  training set's pitch range (none when it already fits; ``auto_octaves``); or a given
  number of octaves; plus ``pitch_shift`` semitones.
- loudness ``"auto"``: quantile mapping of the input's voiced-frame loudness distribution onto
  the training set's that may compress the input's dynamics but never expands them (each step
  between quantiles is the smaller of the two), centred on the training median: a steady tone
  stays steady, at the training set's median loudness; ``"none"``: unchanged; a number: that
  many dB added.
- unvoiced frames (confidence under the tracker's threshold) are lowered by ``quiet_db`` so
  breaths, consonants and room noise stay quiet; silence stays at the -80 dB floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..dsp.core import SILENCE_DB
from ..errors import UserError
from ..limits import OCTAVE_RANGE, check_adjustment
from .frames import Features


def hold_voiced(f0: torch.Tensor, voiced: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """``[B, F]`` f0 where every unvoiced frame takes the last voiced frame's f0; frames before
    the first voiced one take ``held`` ``[B]`` (the value carried from earlier frames)."""
    count = f0.shape[1]
    idx = torch.where(voiced, torch.arange(count).expand_as(f0), -1)
    last = torch.cummax(idx, 1).values
    return torch.where(last >= 0, torch.gather(f0, 1, last.clamp_min(0)),
                       held.unsqueeze(1).expand_as(f0))


def adjust_frames(f0: torch.Tensor, loudness: torch.Tensor, voiced: torch.Tensor,
                  f0_factor: float, gain_db: float, quiet_db: float,
                  floor_db: float = SILENCE_DB) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame: f0 times ``f0_factor``; loudness moved by ``gain_db`` (silent frames stay
    at ``floor_db``, none falls below it); sounding frames that are not ``voiced`` lowered by
    ``quiet_db``."""
    floor = torch.full_like(loudness, floor_db)
    voiced = voiced & (loudness > floor_db)
    ld = torch.where(loudness > floor_db, loudness + gain_db, floor)
    ld = torch.where(voiced | (ld <= floor_db), ld, ld - quiet_db)
    return f0 * f0_factor, torch.maximum(ld, floor)


@dataclass
class Adjustment:
    octaves: int
    semitones: float
    loudness_mode: str
    voiced_share: float


def _midi(f0: np.ndarray) -> np.ndarray:
    return 12 * np.log2(np.maximum(f0, 1e-3) / 440.0) + 69


def parse_octave(value: str | int) -> str | int:
    """``"auto"`` or a whole number of octaves (as text or int)."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--octave must be 'auto' or an integer, not {value!r}") from None


def parse_loudness(value: str | float) -> str | float:
    """``"auto"``, ``"none"`` or a number of dB (as text or number)."""
    if value in ("auto", "none"):
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--loudness must be auto, none or a number of dB, not {value!r}"
                        ) from None


def auto_octaves(f0_voiced: np.ndarray, stats: dict[str, Any]) -> int:
    """The smallest whole-octave shift (0 first, then +1, -1, +2, ...) that brings the
    melody's central range (10th to 90th percentile of its voiced pitch) inside the model's
    training range (1st to 99th percentile); a melody wider than that range gets the shift
    that leaves the least of it outside. Models without quantiles: the octave nearest their
    mean pitch."""
    pitch_stats = stats.get("pitch_midi") or {}
    midi = _midi(f0_voiced)
    q = pitch_stats.get("quantiles")
    if not q:
        if "mean" not in pitch_stats:
            raise UserError("the model has no training statistics: give --octave N")
        return int(np.round((pitch_stats["mean"] - midi.mean()) / 12))
    levels = np.linspace(0, 100, len(q))
    lo, hi = np.interp(1, levels, q), np.interp(99, levels, q)
    m_lo, m_hi = np.percentile(midi, 10), np.percentile(midi, 90)
    shifts = sorted(OCTAVE_RANGE, key=lambda k: (abs(k), -k))

    def outside(k: int) -> float:
        return max(0.0, lo - (m_lo + 12 * k)) + max(0.0, (m_hi + 12 * k) - hi)

    return min(shifts, key=outside)  # min keeps the first of equals: the smallest shift


def _auto_loudness(ld: np.ndarray, voiced: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    q = (stats.get("loudness_db") or {}).get("quantiles")
    if not q:
        raise UserError("the model has no training statistics: use --loudness none or DB")
    target = np.asarray(q, np.float64)
    src_q = np.percentile(ld[voiced], np.linspace(0, 100, len(q)))
    src_q = np.maximum.accumulate(src_q + np.arange(len(q)) * 1e-9)  # strictly increasing
    # a plain quantile map spreads a near-constant input over the whole training range
    # (frame-to-frame jitter of 0.001 dB became 20 dB): steps never wider than the input's
    knots = np.concatenate([[0.0], np.cumsum(np.minimum(np.diff(target), np.diff(src_q)))])
    mid = len(q) // 2
    mapped = np.interp(ld, src_q, knots + (target[mid] - knots[mid]))
    return np.where(ld > SILENCE_DB, mapped, SILENCE_DB)


def adjust_features(feats: Features, stats: dict[str, Any], octave: str | int = "auto",
                    pitch_shift: float = 0.0, loudness: str | float = "auto",
                    voicing_threshold: float = 0.5, quiet_db: float = 20.0
                    ) -> tuple[Features, Adjustment]:
    """Features of a recording -> the features to give a model with training statistics
    ``stats`` (see the module docs), and what was done."""
    f0 = feats.f0_hz.astype(np.float64)
    ld = feats.loudness_db.astype(np.float64)
    voiced = (feats.confidence >= voicing_threshold) & (ld > SILENCE_DB)
    if not voiced.any():
        raise UserError("the input has no confidently pitched sound to transfer (silence or "
                        "noise?)")
    octave, loudness = parse_octave(octave), parse_loudness(loudness)
    check_adjustment(octave, pitch_shift, loudness)
    octaves = auto_octaves(f0[voiced], stats) if octave == "auto" else int(octave)
    mode, gain = str(loudness), 0.0
    if loudness == "auto":
        ld = _auto_loudness(ld, voiced, stats)
    elif loudness != "none":
        gain = float(loudness)
        mode = f"{gain:+g} dB"
    f0_t, ld_t = adjust_frames(torch.from_numpy(f0), torch.from_numpy(ld),
                               torch.from_numpy(voiced), 2.0 ** (octaves + pitch_shift / 12),
                               gain, quiet_db)
    out = Features(f0_t.numpy().astype(np.float32), ld_t.numpy().astype(np.float32),
                   feats.confidence, feats.frame_rate)
    return out, Adjustment(octaves, pitch_shift, mode, float(voiced.mean()))
