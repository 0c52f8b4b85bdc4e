"""Integrated loudness: the K-weighting and the gating, against pyloudnorm."""

import numpy as np
import pyloudnorm
import pytest

from fastddsp.features.lufs import LoudnessMeter, k_weighting


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_k_weighting_is_pyloudnorms(rate):
    theirs = [(f.b, f.a) for f in pyloudnorm.Meter(rate)._filters.values()]
    for (b, a), (tb, ta) in zip(k_weighting(rate), theirs, strict=True):
        np.testing.assert_allclose(b, tb, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a, ta, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (44100, 2), (48000, 1)])
def test_integrated_loudness_equals_pyloudnorm_in_any_chunks(rate, channels):
    rng = np.random.default_rng(rate)
    t = np.arange(rate * 6) / rate
    x = (np.sin(2 * np.pi * 220 * t) * np.linspace(0.02, 0.6, t.size))[:, None] \
        + 0.05 * rng.standard_normal((t.size, channels))
    x[rate: 2 * rate] = 0.0                                   # gated out: silence
    meter = LoudnessMeter(rate, channels)
    for a in range(0, t.size, 5003):
        meter.add(x[a: a + 5003] if channels > 1 else x[a: a + 5003, 0])
    want = pyloudnorm.Meter(rate).integrated_loudness(x if channels > 1 else x[:, 0])
    assert meter.lufs() == pytest.approx(want, abs=1e-6)
    assert -40 < want < 0


def test_silence_measures_minus_infinity():
    meter = LoudnessMeter(16000)
    meter.add(np.zeros(16000 * 2))
    assert meter.lufs() == -np.inf
