"""Pitch tracker agreement metrics (against a reference track such as CREPE-full)."""

from __future__ import annotations

import numpy as np


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200.0 * np.log2(np.maximum(a, 1e-6) / np.maximum(b, 1e-6))


def pitch_agreement(ref_f0: np.ndarray, ref_voiced: np.ndarray, est_f0: np.ndarray
                    ) -> dict[str, float]:
    """On the reference's voiced frames: raw pitch accuracy (share within 50 cents), gross error
    rate (share off by more than 20 %, about 316 cents) and octave errors (share within 50 cents
    of one octave up or down)."""
    n = min(ref_f0.size, est_f0.size)
    v = np.asarray(ref_voiced[:n], bool)
    if not v.any():
        return {"frames": 0, "rpa": float("nan"), "gross": float("nan"), "octave": float("nan")}
    d = cents(est_f0[:n][v], ref_f0[:n][v])
    return {
        "frames": int(v.sum()),
        "rpa": float(np.mean(np.abs(d) <= 50)),
        "gross": float(np.mean(np.abs(d) > 1200 * np.log2(1.2))),
        "octave": float(np.mean(np.abs(np.abs(d) - 1200) <= 50)),
    }
