"""The fast pitch tracker: YIN (de Cheveigné & Kawahara 2002), vectorised over frames.

Per frame of ``window`` samples: the difference function d(tau) over lags up to the longest
period (computed from one FFT cross-correlation and running energies), its cumulative-mean
normalisation d'(tau), the choice of a dip (see ``frames_pitch``) and a sub-sample refinement of
its lag. Confidence is ``1 - depth`` of the chosen dip, set to 0 for frames quieter than
``silence_db``. Frames depend only on their own samples, so the same code runs offline on
frames centred on their time and in the streaming engine (``fastddsp.realtime.stream``) on
frames ending at their time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def difference(frames: torch.Tensor, max_lag: int, double: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n, window]`` frames -> YIN's difference function d(tau) and its cumulative-mean
    normalisation d'(tau), ``[n, max_lag + 1]``, over the first ``window - max_lag`` samples
    (the mean removed); in float64, or float32 with ``double=False``."""
    window = frames.shape[1]
    x = frames.to(torch.float64) if double else frames.to(torch.float32)
    x = x - x.mean(1, keepdim=True)
    w = window - max_lag                                  # integration length
    # A circular correlation of ``size >= window`` points is the linear one at every lag
    # needed: j + tau <= w - 1 + max_lag = window - 1 never wraps.
    size = 1
    while size < window:
        size *= 2
    spec = torch.fft.rfft(x, size) * torch.fft.rfft(x[:, :w], size).conj()
    r = torch.fft.irfft(spec, size)[:, : max_lag + 1]    # sum_j x[j] x[j + tau], j < w
    sq = torch.nn.functional.pad(torch.cumsum(x * x, 1), [1, 0])
    e0 = sq[:, w: w + 1]
    e_tau = sq[:, w: w + max_lag + 1] - sq[:, : max_lag + 1]
    d = (e0 + e_tau - 2 * r).clamp_min(0)
    d[:, 0] = 0
    cum = torch.cumsum(d[:, 1:], 1)
    taus = torch.arange(1, max_lag + 1, dtype=x.dtype)
    dn = torch.cat([torch.ones_like(d[:, :1]), d[:, 1:] * taus / cum.clamp_min(1e-12)], 1)
    return d, dn


def refine_lag(d: torch.Tensor, tau: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Sub-sample period near integer lags ``tau`` ``[n]`` from the difference function ``d``:
    near its minimum d(tau) of a periodic signal is shaped like 1 - cos(2 pi (tau - tau0) /
    tau0); fitting that curve through three lags is exact for a sinusoid, where a parabola is
    biased by up to ~10 cents at short lags (high f0)."""
    rows = torch.arange(d.shape[0])
    t0 = tau.clamp(1, max_lag - 1)
    a, b, c = d[rows, t0 - 1], d[rows, t0], d[rows, t0 + 1]
    denom = a - 2 * b + c
    safe = torch.where(denom == 0, torch.ones_like(denom), denom)
    ratio = torch.where(denom.abs() > 1e-20, (c - a) / safe, torch.zeros_like(denom))
    omega = 2 * math.pi / t0.to(torch.float64)
    shift = (torch.atan(-ratio * torch.tan(omega / 2)) / omega).clamp(-0.5, 0.5)
    return t0 + shift


def choose_period(dn: torch.Tensor, min_lag: int, max_lag: int, margin: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """YIN's choice from d'(tau) ``[n, max_lag + 1]``: the integer lag of the period and the
    depth of its dip (0: perfectly periodic)."""
    lo, hi = min_lag, max_lag
    rows = torch.arange(dn.shape[0])
    # Candidate periods are the dips (local minima) of d'. Each dip's depth is read off a
    # parabola through its three lags, since a period between two integer lags looks
    # shallower than its multiples do. The shortest period whose depth is within ``margin``
    # of the deepest dip wins, which avoids YIN's octave-down errors.
    a, b, c = dn[:, lo - 1: hi - 1], dn[:, lo: hi], dn[:, lo + 1: hi + 1]
    curv = a - 2 * b + c
    slope = a - c
    # (where the curve is not bent the quotient is not used: its inf or nan is dropped)
    depth = torch.where(curv > 1e-12, b - slope * slope / (8 * curv), b)
    depth = torch.minimum(depth.clamp_min(0.0), b)
    dips = (b < a) & (b <= c)
    depth_d = depth.masked_fill(~dips, float("inf"))
    best = depth_d.min(1, keepdim=True).values
    chosen = dips & (depth_d <= best + margin)
    has = chosen.any(1)
    first = torch.argmax(chosen.to(torch.uint8), 1)      # the first (shortest) chosen lag
    tau = torch.where(has, first, b.argmin(1)) + lo
    dip_depth = torch.where(has, depth[rows, tau - lo], b[rows, tau - lo])
    return tau, dip_depth


def yin_frames(frames: torch.Tensor, sample_rate: int, min_lag: int, max_lag: int,
               margin: float, silence_db: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n, window]`` frames -> (f0 Hz, confidence) float32 ``[n]`` (TorchScript-able, so the
    streaming engine and its exports run the same code)."""
    n = frames.shape[0]
    if n == 0:
        return torch.zeros(0), torch.zeros(0)
    d, dn = difference(frames, max_lag)
    tau, dip_depth = choose_period(dn, min_lag, max_lag, margin)
    f0 = sample_rate / refine_lag(d, tau, max_lag)
    conf = (1.0 - dip_depth).clamp(0.0, 1.0)
    energy = frames.to(torch.float64).pow(2).mean(1)
    conf = torch.where(10 * torch.log10(energy + 1e-20) < silence_db, torch.zeros_like(conf),
                       conf)
    return f0.to(torch.float32), conf.to(torch.float32)


@dataclass(frozen=True)
class Yin:
    sample_rate: int = 16000
    window: int = 1024
    fmin: float = 45.0
    fmax: float = 2100.0
    margin: float = 0.15
    silence_db: float = -60.0

    @property
    def max_lag(self) -> int:
        return min(int(np.ceil(self.sample_rate / self.fmin)) + 1, self.window // 2)

    @property
    def min_lag(self) -> int:
        return max(2, int(np.floor(self.sample_rate / self.fmax)))

    def frames_pitch(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``[n, window]`` frames -> (f0 Hz, confidence), float32 arrays of length n."""
        f0, conf = yin_frames(frames, self.sample_rate, self.min_lag, self.max_lag, self.margin,
                              self.silence_db)
        return f0.numpy(), conf.numpy()

    def pitch(self, audio: np.ndarray, centres: np.ndarray,
              chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Frames centred on ``centres`` of ``audio`` at ``sample_rate``; zero padding
        outside the signal."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        left = self.window // 2
        padded = torch.nn.functional.pad(x, (left, self.window))
        # frame f is padded[c, c + window): x[c - window/2, c + window/2)
        start = torch.from_numpy(np.asarray(centres, np.int64))
        offs = torch.arange(self.window)
        f0s, confs = [], []
        for s in range(0, start.numel(), chunk):
            frames = padded[start[s: s + chunk, None] + offs]
            f, c = self.frames_pitch(frames)
            f0s.append(f)
            confs.append(c)
        if not f0s:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(f0s), np.concatenate(confs)
