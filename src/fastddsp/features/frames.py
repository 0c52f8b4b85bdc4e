"""``Features``: frame-rate f0, confidence and loudness of a signal, and resampling between
frame rates, and their CSV files. The currency between feature extraction, files and the models."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from ..io import check_input_file
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


CSV_COLUMNS = ("time_s", "f0_hz", "confidence", "loudness_db")


def read_features_csv(path: str | Path, frame_rate: float | None = None) -> Features:
    """A CSV with columns ``time_s, f0_hz, loudness_db`` (``confidence`` optional), one row per
    frame at any constant or varying frame rate, as a uniform series at ``frame_rate``
    (default: the rows' median rate; see ``Features.from_times``)."""
    path = Path(path)
    check_input_file(path, "features file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read {path} as CSV: {e}") from None
    if not rows:
        raise UserError(f"features file {path} has no rows")
    missing = {"time_s", "f0_hz", "loudness_db"} - set(rows[0])
    if missing:
        raise UserError(f"features file {path} lacks column(s): {', '.join(sorted(missing))}")
    try:
        cols = {c: np.array([float(r[c]) for r in rows]) for c in CSV_COLUMNS if c in rows[0]}
    except (TypeError, ValueError) as e:
        raise UserError(f"features file {path} has a non-numeric value: {e}") from None
    return Features.from_times(cols["time_s"], cols["f0_hz"], cols["loudness_db"],
                               cols.get("confidence"), source=str(path), frame_rate=frame_rate)


def write_features_csv(path: str | Path, features: Features) -> Path:
    """Write ``features`` atomically as CSV; a feature file never holds NaN or infinity."""
    path = Path(path)
    for name in ("f0_hz", "confidence", "loudness_db"):
        if not np.all(np.isfinite(getattr(features, name))):
            raise UserError(f"refusing to write features with NaN or infinite {name}")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for t, f0, c, ld in zip(features.times, features.f0_hz, features.confidence,
                                features.loudness_db, strict=True):
            w.writerow([f"{t:.6f}", f"{f0:.4f}", f"{c:.4f}", f"{ld:.4f}"])
    return path
