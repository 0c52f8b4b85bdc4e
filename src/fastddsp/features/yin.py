"""The fast pitch tracker: YIN (de Cheveigné & Kawahara 2002), vectorised over frames.

Per frame of ``window`` samples: the difference function d(tau) over lags up to the longest
period (computed from one FFT cross-correlation and running energies), its cumulative-mean
normalisation d'(tau), the choice of a dip (see ``frames_pitch``) and a sub-sample refinement of
its lag. Confidence is ``1 - depth`` of the chosen dip, set to 0 for frames quieter than
``silence_db``. Frames depend only on their own samples, so the same code runs offline (frames
centred on their time) and causally on blocks (frames ending at their time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
        n = frames.shape[0]
        if n == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        x = frames.to(torch.float64)
        x = x - x.mean(1, keepdim=True)
        lag_max = self.max_lag
        w = self.window - lag_max                       # integration length
        size = 1 << (self.window + w - 1).bit_length()
        spec = torch.fft.rfft(x, size) * torch.fft.rfft(x[:, :w], size).conj()
        r = torch.fft.irfft(spec, size)[:, : lag_max + 1]    # sum_j x[j] x[j + tau], j < w
        sq = torch.nn.functional.pad(torch.cumsum(x * x, 1), (1, 0))
        e0 = sq[:, w: w + 1]
        taus = torch.arange(lag_max + 1)
        e_tau = sq[:, taus + w] - sq[:, taus]
        d = (e0 + e_tau - 2 * r).clamp_min(0)
        d[:, 0] = 0
        cum = torch.cumsum(d[:, 1:], 1)
        dn = torch.ones_like(d)
        dn[:, 1:] = d[:, 1:] * taus[1:] / cum.clamp_min(1e-12)
        dn_np = dn.numpy()

        lo, hi = self.min_lag, lag_max
        rows = np.arange(n)
        # Candidate periods are the dips (local minima) of d'. Each dip's depth is read off a
        # parabola through its three lags, since a period between two integer lags looks
        # shallower than its multiples do. The shortest period whose depth is within
        # ``margin`` of the deepest dip wins, which avoids YIN's octave-down errors.
        a, b, c = dn_np[:, lo - 1: hi - 1], dn_np[:, lo: hi], dn_np[:, lo + 1: hi + 1]
        curv = a - 2 * b + c
        depth = np.where(curv > 1e-12, b - (a - c) ** 2 / (8 * np.where(curv > 1e-12, curv, 1)),
                         b)
        depth = np.clip(depth, 0.0, b)
        dips = (b < a) & (b <= c)
        depth_d = np.where(dips, depth, np.inf)
        best = depth_d.min(1, keepdims=True)
        chosen = dips & (depth_d <= best + self.margin)
        has = chosen.any(1)
        tau = np.where(has, chosen.argmax(1), b.argmin(1)) + lo
        dip_depth = np.where(has, depth[rows, tau - lo], b[rows, tau - lo])
        # Sub-sample lag: near its minimum d(tau) of a periodic signal is shaped like
        # 1 - cos(2 pi (tau - tau0) / tau0); fitting that curve through three lags is exact for a
        # sinusoid, where a parabola is biased by up to ~10 cents at short lags (high f0).
        t0 = np.clip(tau, 1, lag_max - 1)
        d_np = d.numpy()
        a, b, c = d_np[rows, t0 - 1], d_np[rows, t0], d_np[rows, t0 + 1]
        denom = a - 2 * b + c
        ratio = np.where(np.abs(denom) > 1e-20, (c - a) / np.where(denom == 0, 1, denom), 0.0)
        omega = 2 * np.pi / t0
        shift = np.arctan(-ratio * np.tan(omega / 2)) / omega
        shift = np.clip(shift, -0.5, 0.5)
        period = t0 + shift
        f0 = self.sample_rate / period
        conf = np.clip(1.0 - dip_depth, 0.0, 1.0)
        energy = frames.to(torch.float64).pow(2).mean(1).numpy()
        conf = np.where(10 * np.log10(energy + 1e-20) < self.silence_db, 0.0, conf)
        return f0.astype(np.float32), conf.astype(np.float32)

    def pitch(self, audio: np.ndarray, centres: np.ndarray, causal: bool = False,
              chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Frames centred on ``centres`` (or ending there when ``causal``) of ``audio`` at
        ``sample_rate``; zero padding outside the signal."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        left = self.window if causal else self.window // 2
        padded = torch.nn.functional.pad(x, (left, self.window))
        # frame f is padded[c, c + window): x[c - window/2, c + window/2), or x[c - window, c)
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


class YinStream:
    """Causal block processing: feed audio blocks of any size; get (f0, confidence) for every
    frame whose window ``[t - window, t)`` has fully arrived, frames at ``t = f / frame_rate``.
    Equal to ``Yin.pitch(audio, centres, causal=True)`` on the concatenated blocks."""

    def __init__(self, yin: Yin, frame_rate: float):
        self.yin = yin
        self.hop = yin.sample_rate / frame_rate
        self._buf = np.zeros(yin.window, dtype=np.float32)  # zeros before the signal starts
        self._buf_start = -yin.window                      # absolute index of _buf[0]
        self._received = 0
        self._next_frame = 0

    def _centre(self, f: int) -> int:
        return int(np.round(f * self.hop))

    def process(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, block])
        self._received += block.size
        ends = []
        while self._centre(self._next_frame) <= self._received:
            ends.append(self._centre(self._next_frame))
            self._next_frame += 1
        if not ends:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        w = self.yin.window
        starts = np.asarray(ends) - w - self._buf_start
        frames = torch.from_numpy(self._buf)[torch.from_numpy(starts)[:, None] + torch.arange(w)]
        f0, conf = self.yin.frames_pitch(frames)
        keep_from = self._centre(self._next_frame) - w
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return f0, conf
