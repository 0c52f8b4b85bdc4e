"""``Features``: frame-rate f0, confidence and loudness of a signal, and resampling between
frame rates. The currency between feature extraction, files and the models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..limits import MAX_SECONDS

MAX_FRAME_RATE = 2000.0  # frames/s of a uniform series made from rows at arbitrary times


@dataclass
class Features:
    f0_hz: np.ndarray
    loudness_db: np.ndarray
    confidence: np.ndarray
    frame_rate: float

    @property
    def n_frames(self) -> int:
        return int(self.f0_hz.size)

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.frame_rate

    @classmethod
    def from_times(cls, times: np.ndarray, f0_hz: np.ndarray, loudness_db: np.ndarray,
                   confidence: np.ndarray | None = None, source: str = "features",
                   frame_rate: float | None = None) -> Features:
        """Frames at arbitrary (increasing) times -> a uniform series. The frame rate is the
        median of the times' rate (at most ``MAX_FRAME_RATE``); values are linearly
        interpolated onto it. With ``frame_rate`` the series of the same duration is made at
        that rate directly (equal to ``.resample(frame_rate)`` for evenly spaced rows). The
        times may span at most ``limits.MAX_SECONDS``, so a few rows never ask for more
        frames than a day's worth."""
        times, f0, ld = (np.asarray(a, dtype=np.float64) for a in (times, f0_hz, loudness_db))
        conf = np.ones_like(f0) if confidence is None else np.asarray(confidence, np.float64)
        for name, a in (("time_s", times), ("f0_hz", f0), ("loudness_db", ld),
                        ("confidence", conf)):
            if not np.all(np.isfinite(a)):
                raise UserError(f"{source}: column {name} contains NaN or infinite values")
        if np.any(f0 < 0):
            raise UserError(f"{source}: f0_hz must not be negative")
        if times.size >= 2 and np.any(np.diff(times) <= 0):
            raise UserError(f"{source}: time_s must be strictly increasing")
        if times.size and (times[0] < 0 or times[-1] > MAX_SECONDS):
            raise UserError(f"{source}: time_s must lie within 0..{MAX_SECONDS:g} s "
                            f"({MAX_SECONDS / 3600:g} h)")
        if times.size < 2:
            return cls(f0.astype(np.float32), ld.astype(np.float32), conf.astype(np.float32),
                       250.0)
        rate = min(MAX_FRAME_RATE, 1.0 / float(np.median(np.diff(times))))
        n = int(np.floor((times[-1] - times[0]) * rate + 1e-6)) + 1
        if frame_rate is not None:  # the same duration, straight onto frame_rate's grid
            n, rate = max(1, round(n / rate * frame_rate)), frame_rate
        grid = times[0] + np.arange(n) / rate
        interp = [np.interp(grid, times, a).astype(np.float32) for a in (f0, ld, conf)]
        return cls(interp[0], interp[1], interp[2], rate)

    def resample(self, frame_rate: float) -> Features:
        """The same signal at another frame rate (linear interpolation, same duration)."""
        if abs(frame_rate - self.frame_rate) < 1e-9:
            return self
        duration = self.n_frames / self.frame_rate
        n = max(1, round(duration * frame_rate))
        src_t = self.times
        dst_t = np.arange(n) / frame_rate
        out = [np.interp(dst_t, src_t, a).astype(np.float32)
               for a in (self.f0_hz, self.loudness_db, self.confidence)]
        return Features(out[0], out[1], out[2], frame_rate)
