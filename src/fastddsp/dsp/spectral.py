"""Multi-scale spectral distance: the training loss and the evaluation metric.

For each FFT size n (2048 ... 64): Hann window, hop n/4 (75 % overlap), magnitudes S and S^;
``mean|S - S^| + mean|log(S + eps) - log(S^ + eps)|``; summed over sizes."""

from __future__ import annotations

import torch

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def magnitudes(audio: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``[B, samples]`` -> ``|STFT|`` ``[B, bins, frames]`` (Hann, hop n/4, no centring)."""
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(audio, n_fft, hop_length=n_fft // 4, window=window, center=False,
                      return_complex=True)
    return spec.abs()


def multiscale_spectral_distance(pred: torch.Tensor, target: torch.Tensor,
                                 sizes: tuple[int, ...] = FFT_SIZES, eps: float = 1e-7,
                                 reduce: bool = True) -> torch.Tensor:
    """Distance between ``[B, samples]`` signals (a scalar, or ``[B]`` if not ``reduce``)."""
    n = min(pred.shape[-1], target.shape[-1])
    pred, target = pred[..., :n], target[..., :n]
    total = torch.zeros(pred.shape[0], dtype=pred.dtype, device=pred.device)
    for size in sizes:
        if size > n:
            continue
        s_hat, s = magnitudes(pred, size), magnitudes(target, size)
        total = total + (s - s_hat).abs().mean((1, 2))
        total = total + (torch.log(s + eps) - torch.log(s_hat + eps)).abs().mean((1, 2))
    return total.mean() if reduce else total
