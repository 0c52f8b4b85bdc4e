"""The block-wise IIR filter equals scipy's sample-by-sample recursion, over any chunking."""

import numpy as np
import pytest
import scipy.signal

from fastddsp.dsp.iir import BLOCK, GROUP, LinearFilter
from fastddsp.features.lufs import k_weighting


def chunks(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    out, at = [], 0
    while at < len(x):
        for size in sizes:
            out.append(x[at: at + size])
            at += size
    return out


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000, 96000])
@pytest.mark.parametrize("sizes", [[7777], [1, 0, BLOCK - 1, BLOCK, 3 * BLOCK * GROUP + 5]])
def test_k_weighting_cascade_equals_scipy_lfilter(rate, sizes):
    x = np.random.default_rng(rate).standard_normal((rate * 3, 2))
    want = x
    for b, a in k_weighting(rate):
        want = scipy.signal.lfilter(b, a, want, axis=0)
    f = LinearFilter(k_weighting(rate), channels=2)
    got = np.concatenate([f(c) for c in chunks(x, sizes)])
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-9 * np.abs(want).max()


def test_other_orders_and_a_leading_coefficient():
    """A first-order section, a third-order one with ``a[0] != 1``, in series."""
    sections = [(np.array([0.5, 0.5]), np.array([1.0, -0.9])),
                (np.array([2.0, -1.0, 0.3, 0.1]), np.array([2.0, -1.2, 0.5, -0.1]))]
    x = np.random.default_rng(3).standard_normal(20_000)
    want = x
    for b, a in sections:
        want = scipy.signal.lfilter(b, a, want)
    f = LinearFilter(sections)
    got = np.concatenate([f(c) for c in chunks(x, [333, 4097])])[:, 0]
    assert np.abs(got - want).max() < 1e-10 * np.abs(want).max()


def test_an_impulse_gives_the_impulse_response():
    b, a = np.array([1.0, 0.0, 0.0]), np.array([1.0, -1.8, 0.81])   # a double pole at 0.9
    x = np.zeros(200)
    x[0] = 1.0
    y = LinearFilter([(b, a)])(x)[:, 0]
    n = np.arange(200)
    assert np.allclose(y, (n + 1) * 0.9 ** n, atol=1e-12)   # (n + 1) p^n
