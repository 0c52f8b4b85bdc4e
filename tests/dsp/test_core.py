import math

import pytest
import torch

from fastddsp.dsp.core import (
    exp_sigmoid,
    fft_convolve,
    hz_to_midi,
    midi_to_hz,
    next_fast_len,
    scale_f0,
    scale_loudness,
    upsample_linear,
)


def test_exp_sigmoid_values():
    x = torch.tensor([-100.0, 0.0, 100.0])
    y = exp_sigmoid(x)
    assert y[0].item() == pytest.approx(1e-7, rel=1e-3)
    assert y[1].item() == pytest.approx(2 * 0.5 ** math.log(10) + 1e-7, rel=1e-6)
    assert y[2].item() == pytest.approx(2.0, rel=1e-6)


def test_midi_conversions():
    assert hz_to_midi(torch.tensor([440.0, 261.6256, 0.0])).tolist() == pytest.approx(
        [69.0, 60.0, 0.0], abs=1e-4)
    assert midi_to_hz(torch.tensor([69.0, 81.0])).tolist() == pytest.approx([440.0, 880.0])
    assert scale_f0(torch.tensor([440.0])).item() == pytest.approx(69 / 127)


def test_loudness_scaling_floors_but_does_not_clip_above():
    y = scale_loudness(torch.tensor([-120.0, -80.0, -40.0, 0.0, 10.0]))
    assert y.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.125])


def test_upsample_linear_interpolates_and_holds_last_frame():
    frames = torch.tensor([[0.0, 4.0, 8.0]])
    out = upsample_linear(frames, 4)
    assert out.tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8]]
    out = upsample_linear(frames, 4, right=torch.tensor([[0.0]]))
    assert out[0, -4:].tolist() == [8, 6, 4, 2]


def test_next_fast_len_is_5_smooth_and_minimal():
    for n in [1, 7, 97, 1000, 80001, 131073]:
        m = next_fast_len(n)
        assert m >= n
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        assert k == 1
        assert all(not _smooth(j) for j in range(n, m))


def _smooth(j: int) -> bool:
    for p in (2, 3, 5):
        while j % p == 0:
            j //= p
    return j == 1


def test_fft_convolve_matches_direct():
    a = torch.randn(3, 100, dtype=torch.float64)
    b = torch.randn(3, 17, dtype=torch.float64)
    ref = torch.stack([torch.tensor(__import__("numpy").convolve(a[i], b[i])) for i in range(3)])
    assert torch.allclose(fft_convolve(a, b), ref, atol=1e-10)
