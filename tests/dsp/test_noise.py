import numpy as np
import pytest
import scipy.signal
import torch

from fastddsp.dsp.noise import filtered_noise, noise_impulse_responses, white_noise

SR = 16000
HOP = 64


def test_impulse_response_is_linear_phase_and_centred():
    mags = torch.rand(3, 65)
    ir = noise_impulse_responses(mags)
    assert ir.shape == (3, 128)
    assert torch.allclose(ir[:, 1:64], ir[:, 65:].flip(-1), atol=1e-6)  # symmetric about 64


def test_flat_magnitudes_scale_the_noise_without_delay():
    n_frames = 50
    noise = white_noise((1, n_frames * HOP), torch.Generator().manual_seed(0))
    out = filtered_noise(torch.full((1, n_frames, 65), 0.5), noise, HOP)
    assert out.shape == noise.shape
    assert torch.allclose(out, 0.5 * noise, atol=1e-5)


def test_measured_response_follows_requested_band_magnitudes():
    n_frames = 4000
    band_hz = np.linspace(0, SR / 2, 65)
    requested_db = -40 * band_hz / (SR / 2) + 6 * np.sin(band_hz / 1000)  # tilt with ripples
    mags = torch.tensor(10 ** (requested_db / 20), dtype=torch.float32).expand(1, n_frames, 65)
    noise = white_noise((1, n_frames * HOP), torch.Generator().manual_seed(0))
    out = filtered_noise(mags, noise, HOP)[0].numpy()
    freqs, psd = scipy.signal.welch(out, SR, nperseg=128, noverlap=64)
    flat = (1 / 3) / (SR / 2)  # uniform [-1, 1) noise: variance 1/3
    measured_db = 10 * np.log10(psd / flat)
    assert np.allclose(freqs, band_hz)
    inner = slice(2, 63)
    assert np.max(np.abs(measured_db[inner] - requested_db[inner])) < 1.5


def test_magnitudes_change_per_frame():
    n_frames = 200
    mags = torch.full((1, n_frames, 65), 1e-4)
    mags[:, 100:] = 1.0
    noise = white_noise((1, n_frames * HOP), torch.Generator().manual_seed(0))
    out = filtered_noise(mags, noise, HOP)[0]
    quiet = out[: 90 * HOP].pow(2).mean()
    loud = out[110 * HOP:].pow(2).mean()
    assert 10 * torch.log10(loud / quiet).item() == pytest.approx(80.0, abs=1.0)


def test_gradient_reaches_magnitudes():
    mags = torch.rand(1, 10, 65, requires_grad=True)
    out = filtered_noise(mags, white_noise((1, 10 * HOP)), HOP)
    out.pow(2).sum().backward()
    assert mags.grad is not None and torch.count_nonzero(mags.grad) > 600


def test_only_sounding_frames_make_noise_with_the_same_numbers():
    from fastddsp.dsp.noise import hashed_noise, noise_segments, sounding_noise_segments

    torch.manual_seed(3)
    mags = torch.rand(3, 20, 65)
    mags[0, 4:9] = 0.0
    mags[2] = 0.0
    index = torch.arange(20 * 64, dtype=torch.int64) + 640
    dense = noise_segments(mags, hashed_noise(index, 7, 3), 64)
    sparse = sounding_noise_segments(mags, index, 7, 64)
    assert torch.allclose(sparse, dense, atol=1e-6)
    assert sparse[2].abs().max() == 0 and sparse[0, 4:9].abs().max() == 0
    full = torch.rand(2, 20, 65) + 0.1                   # all sounding: computed at once
    assert torch.allclose(sounding_noise_segments(full, index, 7, 64),
                          noise_segments(full, hashed_noise(index, 7, 2), 64), atol=1e-6)
