"""Loudness as DDSP computes it: A-weighted power of a centred STFT, in dB.

``mean over bins of |STFT|^2 * A-weight``, Hann window of ``n_fft`` (512) samples, frames
centred on ``t = f / frame_rate`` (zero padding at the edges), ``10 log10``, floored at
-80 dB, no upper clip, 0 dB reference. Works at any sample rate and frame rate; for non-integer
hops each frame is centred on the nearest sample.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..dsp.core import SILENCE_DB


def a_weighting_db(freqs: np.ndarray, min_db: float = -80.0) -> np.ndarray:
    """IEC 61672 A-weighting in dB (0 dB at 1 kHz), floored at ``min_db``."""
    f2 = np.asarray(freqs, dtype=np.float64) ** 2
    c = np.array([20.6, 107.7, 737.9, 12194.0]) ** 2
    with np.errstate(divide="ignore"):
        db = 2.0 + 20.0 * (np.log10(c[3]) + 2 * np.log10(f2 + 1e-300) - np.log10(f2 + c[0])
                           - np.log10(f2 + c[3]) - 0.5 * np.log10(f2 + c[1])
                           - 0.5 * np.log10(f2 + c[2]))
    return np.maximum(db, min_db)


def frame_centres(n_samples: int, sample_rate: float, frame_rate: float) -> np.ndarray:
    """Sample index of each frame's centre: frames at t = f / frame_rate covering the signal."""
    hop = sample_rate / frame_rate
    n_frames = max(1, math.ceil(n_samples / hop - 1e-9))
    return np.round(np.arange(n_frames) * hop).astype(np.int64)


def loudness_db(audio: np.ndarray | torch.Tensor, sample_rate: float, frame_rate: float = 250.0,
                n_fft: int = 512) -> np.ndarray:
    """Mono audio -> A-weighted loudness in dB per frame, as float32."""
    n = int(np.asarray(audio).size)
    return loudness_at(audio, frame_centres(n, sample_rate, frame_rate), sample_rate, n_fft)


def loudness_weights(n_fft: int, sample_rate: float) -> torch.Tensor:
    """A-weighting as power gains per rFFT bin ``[n_fft // 2 + 1]``."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return torch.from_numpy(10 ** (a_weighting_db(freqs) / 10)).float()


def frames_loudness(frames: torch.Tensor, window: torch.Tensor, weight: torch.Tensor,
                    floor_db: float = SILENCE_DB) -> torch.Tensor:
    """``[n, n_fft]`` audio frames -> loudness in dB ``[n]``, floored at ``floor_db``
    (TorchScript-able: the streaming engine runs this same function)."""
    power = torch.fft.rfft(frames * window).abs().pow(2)
    mean = (power * weight).mean(-1).double()
    db = 10.0 * torch.log10(mean.clamp_min(10.0 ** (floor_db / 10.0)))
    return db.clamp_min(floor_db).float()


def loudness_at(audio: np.ndarray | torch.Tensor, centres: np.ndarray, sample_rate: float,
                n_fft: int = 512, chunk_frames: int = 4096) -> np.ndarray:
    """Loudness of frames centred on the given sample indices (zeros outside ``audio``)."""
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
    padded = torch.nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    window = torch.hann_window(n_fft, periodic=True)
    weight = loudness_weights(n_fft, sample_rate)
    offsets = torch.arange(n_fft)
    out = np.empty(centres.size, dtype=np.float32)
    for start in range(0, centres.size, chunk_frames):
        c = torch.from_numpy(centres[start: start + chunk_frames])
        idx = c[:, None] + offsets  # frame f spans padded[c, c + n_fft) = x[c - n/2, c + n/2)
        idx = idx.clamp_max(padded.numel() - 1)
        out[start: start + c.numel()] = frames_loudness(padded[idx], window, weight).numpy()
    return out


def shifted_loudness(loudness: np.ndarray, db: float) -> np.ndarray:
    """Loudness moved by ``db`` dB: silent frames (at ``SILENCE_DB``) stay silent, and no frame
    falls below silence (the streaming engine does the same in torch)."""
    return np.where(loudness > SILENCE_DB, np.maximum(loudness + db, SILENCE_DB), SILENCE_DB)
