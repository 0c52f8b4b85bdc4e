"""PNG plots for the listening page and the web app: spectrograms and f0/loudness curves.

matplotlib's object API with the Agg canvas only (no pyplot, no global state), so plots can
be drawn from several threads and need no display."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.signal

from ..dsp.core import SILENCE_DB
from ..features.frames import Features

COLOURS = ("#222222", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
           "#e377c2", "#17becf")


@dataclass
class Curve:
    """One signal's features on an f0/loudness plot; f0 is drawn only where voiced."""
    label: str
    features: Features
    voicing_threshold: float = 0.5
    colour: str | None = None


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def spectrogram_png(audio: np.ndarray, sample_rate: int, max_hz: float | None = None,
                    width_px: int = 320, height_px: int = 150, dpi: int = 100) -> bytes:
    """Log-magnitude spectrogram (Hann, ~64 ms window, 75% overlap, 80 dB range) as PNG, up
    to ``max_hz`` (default: Nyquist; 24 kHz for a 48 kHz model)."""
    from matplotlib.figure import Figure

    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    n_fft = int(2 ** np.round(np.log2(0.064 * sample_rate)))
    if audio.size < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.size))
    freqs, _, spec = scipy.signal.stft(audio, sample_rate, nperseg=n_fft,
                                       noverlap=n_fft * 3 // 4, boundary=None)
    db = 20 * np.log10(np.abs(spec) + 1e-9)
    top = float(db.max())
    db = np.clip(db, top - 80.0, top)
    keep = freqs <= min(max_hz or sample_rate / 2, sample_rate / 2)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_axes((0.14, 0.2, 0.84, 0.76))
    ax.imshow(db[keep], origin="lower", aspect="auto", cmap="magma",
              extent=(0.0, audio.size / sample_rate, 0.0, float(freqs[keep][-1]) / 1000))
    ax.set_xlabel("s", fontsize=7, labelpad=1)
    ax.set_ylabel("kHz", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=6, length=2, pad=1)
    return _png(fig)


def features_png(curves: Sequence[Curve], width_px: int = 360, height_px: int = 240,
                 dpi: int = 100) -> bytes:
    """f0 (Hz, voiced frames only) above loudness (dB), one line per curve, legend on top."""
    from matplotlib.figure import Figure

    n_legend_rows = -(-len(curves) // 3)
    top = 1.0 - (n_legend_rows * 13 + 6) / height_px
    gap, bottom = 0.04, 0.14
    h = (top - bottom - gap) / 2
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax_f0 = fig.add_axes((0.15, bottom + h + gap, 0.83, h))
    ax_ld = fig.add_axes((0.15, bottom, 0.83, h), sharex=ax_f0)
    for i, c in enumerate(curves):
        colour = c.colour or COLOURS[i % len(COLOURS)]
        f = c.features
        voiced = (f.confidence >= c.voicing_threshold) & (f.loudness_db > SILENCE_DB)
        ax_f0.plot(f.times, np.where(voiced, f.f0_hz, np.nan), color=colour, lw=0.9,
                   label=c.label)
        ax_ld.plot(f.times, f.loudness_db, color=colour, lw=0.9)
    lo, hi = ax_f0.get_ylim()
    if lo > 0 and hi / lo < 2 ** (4 / 12):  # a steady note: show at least 4 semitones
        mid = np.sqrt(lo * hi)
        ax_f0.set_ylim(mid * 2 ** (-2 / 12), mid * 2 ** (2 / 12))
    ax_f0.set_ylabel("f0 Hz", fontsize=7, labelpad=1)
    ax_ld.set_ylabel("loudness dB", fontsize=7, labelpad=1)
    ax_ld.set_xlabel("s", fontsize=7, labelpad=1)
    for ax in (ax_f0, ax_ld):
        ax.tick_params(labelsize=6, length=2, pad=1)
        ax.grid(alpha=0.3, lw=0.5)
    ax_f0.tick_params(labelbottom=False)
    if curves:
        fig.legend(fontsize=6, ncol=min(len(curves), 3), loc="upper left",
                   bbox_to_anchor=(0.13, 1.0), frameon=False, borderaxespad=0.2,
                   handlelength=1.5, columnspacing=1.0)
    return _png(fig)
