"""Multi-scale spectral distance: the training loss and the evaluation metric.

For each FFT size n (2048 ... 64): Hann window, hop n/4 (75 % overlap), magnitudes S and S^;
``mean|S - S^| + mean|log(S + eps) - log(S^ + eps)|``; summed over sizes.

Training may limit each example's comparison to the band its target really has
(``max_hz``): a tape-shifted example was resampled, so it is empty near Nyquist, and scoring
that band would teach the model to leave it empty in every example."""

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
                                 reduce: bool = True, max_hz: torch.Tensor | None = None,
                                 sample_rate: float | None = None) -> torch.Tensor:
    """Distance between ``[B, samples]`` signals (a scalar, or ``[B]`` if not ``reduce``).
    With ``max_hz`` ``[B]`` (and ``sample_rate``), example b is compared on the bins at or
    below ``max_hz[b]`` only (means over those bins; ``inf`` = the whole band)."""
    n = min(pred.shape[-1], target.shape[-1])
    pred, target = pred[..., :n], target[..., :n]
    if max_hz is not None and sample_rate is None:
        raise ValueError("max_hz needs sample_rate")
    total = torch.zeros(pred.shape[0], dtype=pred.dtype, device=pred.device)
    for size in sizes:
        if size > n:
            continue
        s_hat, s = magnitudes(pred, size), magnitudes(target, size)
        lin = (s - s_hat).abs()
        log = (torch.log(s + eps) - torch.log(s_hat + eps)).abs()
        if max_hz is None:
            total = total + lin.mean((1, 2)) + log.mean((1, 2))
            continue
        freqs = torch.arange(s.shape[1], device=s.device, dtype=s.dtype) * (sample_rate / size)
        keep = (freqs <= max_hz.to(s.dtype).unsqueeze(-1)).to(s.dtype).unsqueeze(-1)  # [B,K,1]
        count = keep.sum((1, 2)).clamp_min(1.0) * s.shape[2]
        total = total + ((lin + log) * keep).sum((1, 2)) / count
    return total.mean() if reduce else total
