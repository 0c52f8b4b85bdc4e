"""Integrated loudness (ITU-R BS.1770-4, LUFS) measured block by block, so a file of any length
is measured in bounded memory (one number per channel per 100 ms). The K-weighting filters are
pyloudnorm's; the gating is the standard's: 400 ms blocks every 100 ms, an absolute gate at
-70 LUFS, a relative gate 10 LU under the loudness of the blocks above it."""

from __future__ import annotations

from typing import Any

import numpy as np

BLOCK_S = 0.4
STEP_S = 0.1
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs


class LoudnessMeter:
    """``add`` blocks of audio ``[samples]`` or ``[samples, channels]``; ``lufs()`` at any
    time gives the integrated loudness of everything added (-inf for silence)."""

    def __init__(self, sample_rate: int, channels: int = 1):
        # imported here: with scipy.signal they cost 0.8 s, which commands that measure no
        # loudness (render, synth) should not pay at start
        import pyloudnorm
        import scipy.signal

        self.lfilter: Any = scipy.signal.lfilter
        meter = pyloudnorm.Meter(sample_rate)
        self.filters = [(f.b, f.a) for f in meter._filters.values()]
        self.states = [np.zeros((max(len(a), len(b)) - 1, channels)) for b, a in self.filters]
        self.channels = channels
        self.step = round(STEP_S * sample_rate)
        self.carry = np.zeros((0, channels))
        self.steps: list[np.ndarray] = []   # per 100 ms: sum of squares per channel

    def add(self, audio: np.ndarray) -> None:
        x = np.asarray(audio, np.float64).reshape(len(audio), -1)
        for i, (b, a) in enumerate(self.filters):
            x, self.states[i] = self.lfilter(b, a, x, axis=0, zi=self.states[i])
        x = np.concatenate([self.carry, x])
        n = x.shape[0] // self.step
        if n:
            self.steps.append((x[: n * self.step] ** 2).reshape(n, self.step, -1).sum(1))
        self.carry = x[n * self.step:]

    def lufs(self) -> float:
        if not self.steps:
            return -np.inf
        sums = np.concatenate(self.steps)                       # [steps, channels]
        per_block = round(BLOCK_S / STEP_S)
        if sums.shape[0] < per_block:
            return -np.inf
        window = np.lib.stride_tricks.sliding_window_view(sums, per_block, axis=0).sum(-1)
        z = window / (per_block * self.step)                    # mean square per block
        gains = np.asarray(CHANNEL_GAINS[: self.channels])
        power = z @ gains
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10 * np.log10(power)
        above = loudness >= ABSOLUTE_GATE
        if not above.any():
            return -np.inf
        relative = -0.691 + 10 * np.log10(power[above].mean()) + RELATIVE_GATE
        gated = above & (loudness >= relative)
        return float(-0.691 + 10 * np.log10(power[gated].mean()))
