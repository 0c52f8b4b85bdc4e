"""A look-ahead peak limiter for audio that arrives in chunks (numpy), so that no output of
fastddsp clips however loud the instrument plays.

Per sample, the gain that would hold it at the ceiling is ``g = min(1, ceiling / |x|)``. The
gain applied is the minimum of ``g`` over the next ``L`` samples (look-ahead), averaged over the
last ``L`` of those minima: every average that reaches a peak includes the peak's own gain, so
no sample exceeds the ceiling, and the gain glides down over ``L`` samples instead of stepping.
After a peak the reduction decays exponentially (release). The output is the input delayed by
``L - 1`` samples; ``limit_chunks`` takes that delay off, so the output has the input's length
and timing. Audio under the ceiling passes unchanged (gain exactly 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d

CEILING = 10 ** (-1.0 / 20)  # -1 dBFS: headroom for the peaks between samples


@dataclass
class LimiterReport:
    """What a limiter did: the largest gain reduction in dB (0: nothing was limited)."""

    max_reduction_db: float = 0.0


def limit_chunks(chunks: Iterator[np.ndarray], sample_rate: float, ceiling: float = CEILING,
                 lookahead_s: float = 0.002, release_s: float = 0.05,
                 report: LimiterReport | None = None) -> Iterator[np.ndarray]:
    """Mono chunks in -> the same samples, peak-limited to ``ceiling``, in chunks of about the
    same sizes (the first ``L - 1`` samples later, the rest at the end)."""
    look = max(1, round(lookahead_s * sample_rate))
    decay = 1.0 / max(release_s * sample_rate, 1.0)       # per sample, in log reduction
    keep_x = np.zeros(0, np.float64)                      # input not yet output
    keep_g = np.zeros(0, np.float64)                      # and its per-sample gains
    minima = np.ones(look - 1)                            # the last L - 1 look-ahead minima
    held = 0.0                                            # reduction (1 - gain) so far
    pending = next(chunks, None)
    while pending is not None:
        following = next(chunks, None)
        last = following is None
        x = np.asarray(pending, np.float64)
        gain = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-30))
        buf_x, buf_g = np.concatenate([keep_x, x]), np.concatenate([keep_g, gain])
        n_out = buf_x.size if last else max(0, buf_x.size - (look - 1))
        future = np.concatenate([buf_g, np.ones(look - 1)]) if last else buf_g
        # minimum over [t, t + L): minimum_filter1d centres its window; origin moves it forward
        window_min = minimum_filter1d(future, look, mode="nearest", origin=-(look // 2))[:n_out]
        joined = np.concatenate([minima, window_min])
        sums = np.cumsum(np.concatenate([[0.0], joined]))
        smooth = (sums[look:] - sums[: sums.size - look]) / look       # mean of the last L
        reduction = 1.0 - smooth
        # release: r_out[t] = max(r[t], r_out[t - 1] * exp(-decay)), as a running maximum in
        # the log domain (no per-sample loop)
        t = np.arange(1, n_out + 1)
        log_r = np.log(np.maximum(reduction, 1e-30)) + t * decay
        start = np.log(max(held, 1e-30))
        out_r = np.exp(np.maximum.accumulate(np.maximum(log_r, start)) - t * decay)
        out_r = np.where(out_r < 1e-12, 0.0, out_r)
        y = buf_x[:n_out] * (1.0 - out_r)
        if n_out:
            held = float(out_r[-1])
            if report is not None and out_r.max() > 0:
                db = -20 * np.log10(max(1.0 - float(out_r.max()), 1e-12))
                report.max_reduction_db = max(report.max_reduction_db, db)
        minima = joined[joined.size - (look - 1):] if look > 1 else minima
        keep_x, keep_g = buf_x[n_out:], buf_g[n_out:]
        yield y.astype(np.float32)
        pending = following
