import math

import numpy as np
import pytest
import torch

from fastddsp.dsp.spectral import FFT_SIZES, magnitudes, multiscale_spectral_distance

SR = 16000


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(2, SR, generator=g) * 2 - 1
    t = torch.arange(SR) / SR
    pred = target + 0.5 * torch.sin(2 * math.pi * 7800 * t)  # differs only at 7.8 kHz
    return pred, target


def test_distance_matches_its_definition():
    pred, target = _pair()
    want = 0.0
    for n in FFT_SIZES:
        s, s_hat = magnitudes(target, n), magnitudes(pred, n)
        want += ((s - s_hat).abs().mean() + (torch.log(s + 1e-7) - torch.log(s_hat + 1e-7))
                 .abs().mean()).item()
    assert multiscale_spectral_distance(pred, target).item() == pytest.approx(want, rel=1e-5)
    assert multiscale_spectral_distance(target, target).item() == 0.0


def test_band_limit_compares_only_the_bins_below_it():
    pred, target = _pair()
    full = multiscale_spectral_distance(pred, target, reduce=False)
    limited = multiscale_spectral_distance(pred, target, reduce=False, sample_rate=SR,
                                           max_hz=torch.tensor([math.inf, 5000.0]))
    assert limited[0].item() == pytest.approx(full[0].item(), rel=1e-6)  # inf: whole band
    # the 7.8 kHz difference is outside example 1's band: only window leakage is left
    assert limited[1].item() < 0.05 * full[1].item()
    # by hand: means over the bins at or below 5 kHz of every FFT size
    want = 0.0
    for n in FFT_SIZES:
        k = int(np.floor(5000 * n / SR)) + 1
        s, s_hat = magnitudes(target[1:], n)[:, :k], magnitudes(pred[1:], n)[:, :k]
        want += ((s - s_hat).abs().mean() + (torch.log(s + 1e-7) - torch.log(s_hat + 1e-7))
                 .abs().mean()).item()
    assert limited[1].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="sample_rate"):
        multiscale_spectral_distance(pred, target, max_hz=torch.tensor([1.0, 1.0]))
