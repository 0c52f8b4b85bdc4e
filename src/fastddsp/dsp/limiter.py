"""A look-ahead peak limiter for audio that arrives in chunks (numpy), so that no output of
fastddsp clips however loud the instrument plays.

Per sample, the gain that would hold it at the ceiling is ``g = min(1, ceiling / |x|)``. The
gain applied is the minimum of ``g`` over the next ``L`` samples (look-ahead), averaged over the
last ``L`` of those minima: every average that reaches a peak includes the peak's own gain, so
no sample exceeds the ceiling, and the gain glides down over ``L`` samples instead of stepping.
After a peak the reduction decays exponentially (release). The output is the input delayed by
``L - 1`` samples; ``limit_chunks`` takes that delay off, so the output has the input's length
and timing (it yields each chunk's samples once the next ``L - 1`` have arrived). Audio under
the ceiling passes unchanged (gain exactly 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CEILING = 10 ** (-1.0 / 20)  # -1 dBFS: headroom for the peaks between samples


@dataclass
class LimiterReport:
    """What a limiter did: the largest gain reduction in dB (0: nothing was limited)."""

    max_reduction_db: float = 0.0


def forward_minimum(x: np.ndarray, width: int) -> np.ndarray:
    """``out[t] = min(x[t: t + width])``, the last value repeated past the end: by doubling
    (the minimum over 2w samples is that of two overlapping w-sample minima), in
    ``log2(width)`` vector passes. Numpy alone: scipy.ndimage's filter would cost every command
    0.15 s of import for this one line."""
    x = np.asarray(x)
    if width <= 1 or x.size == 0:
        return x.copy()
    m = np.concatenate([x, np.full(width - 1, x[-1], x.dtype)])
    w = 1
    while 2 * w <= width:
        m = np.minimum(m[: m.size - w], m[w:])
        w *= 2
    if w < width:  # two overlapping windows of w cover [t, t + width)
        m = np.minimum(m[: m.size - (width - w)], m[width - w:])
    return m[: x.size]


def limiter_note(reduction_db: float) -> str:
    """One line for the user when a limiter reduced peaks by ``reduction_db``, else empty."""
    if reduction_db <= 0.05:
        return ""
    return (f"peaks limited by up to {reduction_db:.1f} dB to stay under "
            f"{20 * np.log10(CEILING):.0f} dBFS (the output would have clipped)")


class PeakLimiter:
    """The limiter as a push-style object: ``process(chunk, last)`` returns the samples that
    are ready (all but the last ``L - 1`` until ``last``). With ``lookahead_s=0`` there is no
    delay at all (every chunk comes back whole, at once: for the live audio path), the gain then
    falls on the peak's own sample and recovers over the release."""

    def __init__(self, sample_rate: float, ceiling: float = CEILING, lookahead_s: float = 0.002,
                 release_s: float = 0.05, report: LimiterReport | None = None):
        self.look = look = max(1, round(lookahead_s * sample_rate))
        self.ceiling = ceiling
        self.decay = 1.0 / max(release_s * sample_rate, 1.0)  # per sample, in log reduction
        self.report = report
        # the input is preceded by L - 1 samples of silence (gain 1), so that the averages of
        # the first samples, too, run over minima of windows that contain them; those L - 1
        # samples are dropped from the output
        self.keep_x = np.zeros(look - 1, np.float64)      # input not yet output
        self.keep_g = np.ones(look - 1, np.float64)       # and its per-sample gains
        self.minima = np.ones(look - 1)                   # the last L - 1 look-ahead minima
        self.held = 0.0                                   # reduction (1 - gain) so far
        self.drop = look - 1                              # leading silence still to drop

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        look = self.look
        x = np.asarray(chunk, np.float64).reshape(-1)
        gain = np.minimum(1.0, self.ceiling / np.maximum(np.abs(x), 1e-30))
        buf_x = np.concatenate([self.keep_x, x])
        buf_g = np.concatenate([self.keep_g, gain])
        n_out = buf_x.size if last else max(0, buf_x.size - (look - 1))
        future = np.concatenate([buf_g, np.ones(look - 1)]) if last else buf_g
        window_min = forward_minimum(future, look)[:n_out]   # minimum over [t, t + L)
        joined = np.concatenate([self.minima, window_min])
        sums = np.cumsum(np.concatenate([[0.0], joined]))
        smooth = (sums[look:] - sums[: sums.size - look]) / look       # mean of the last L
        # release: r_out[t] = max(r[t], r_out[t - 1] * exp(-decay)), as a running maximum in
        # the log domain (no per-sample loop)
        t = np.arange(1, n_out + 1)
        log_r = np.log(np.maximum(1.0 - smooth, 1e-30)) + t * self.decay
        start = np.log(max(self.held, 1e-30))
        out_r = np.exp(np.maximum.accumulate(np.maximum(log_r, start)) - t * self.decay)
        out_r = np.where(out_r < 1e-12, 0.0, out_r)
        y = buf_x[:n_out] * (1.0 - out_r)
        if n_out:
            self.held = float(out_r[-1])
            if self.report is not None and out_r.max() > 0:
                db = -20 * np.log10(max(1.0 - float(out_r.max()), 1e-12))
                self.report.max_reduction_db = max(self.report.max_reduction_db, db)
        if look > 1:
            self.minima = joined[joined.size - (look - 1):]
        self.keep_x, self.keep_g = buf_x[n_out:], buf_g[n_out:]
        cut = min(self.drop, y.size)
        self.drop -= cut
        return y[cut:].astype(np.float32)


def limit_chunks(chunks: Iterator[np.ndarray], sample_rate: float, ceiling: float = CEILING,
                 lookahead_s: float = 0.002, release_s: float = 0.05,
                 report: LimiterReport | None = None) -> Iterator[np.ndarray]:
    """Mono chunks in -> the same samples, peak-limited to ``ceiling``, in chunks of about the
    same sizes (the first ``L - 1`` samples later, the rest at the end)."""
    limiter = PeakLimiter(sample_rate, ceiling, lookahead_s, release_s, report)
    pending = next(chunks, None)
    while pending is not None:
        following = next(chunks, None)
        yield limiter.process(pending, last=following is None)
        pending = following
