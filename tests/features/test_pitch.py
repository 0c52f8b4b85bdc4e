import numpy as np
import pytest
import torch

from fastddsp.features.loudness import frame_centres
from fastddsp.features.pitch import TRACKERS, clean_f0, track
from fastddsp.features.yin import difference
from tests.conftest import tone

SR = 16000
ALL = list(TRACKERS)


def cents(a, b):
    return 1200 * np.log2(a / b)


@pytest.mark.parametrize("tracker,f0", [
    (t, f) for t in ALL for f in (55.0, 110.0, 220.0, 440.0, 880.0, 1760.0)
    if not (t.startswith("net") and f < 62.5)])   # the networks' range starts at 62.5 Hz
def test_tones_within_10_cents(tracker, f0):
    x = tone(f0, 0.6)
    c = frame_centres(x.size, SR, 100)
    est, conf = track(x, c, tracker)
    inner = slice(8, -8)  # frames whose window lies inside the tone
    assert abs(np.median(cents(est[inner], f0))) < 10
    assert np.median(conf[inner]) >= TRACKERS[tracker].voicing_threshold


@pytest.mark.parametrize("tracker", ALL)
def test_glissando_has_no_octave_jumps(tracker):
    seconds = 3.0
    t = np.arange(int(seconds * SR)) / SR
    f_inst = 110.0 * 2 ** (3 * t / seconds)  # 110 -> 880 Hz, exponential
    phase = 2 * np.pi * np.cumsum(f_inst) / SR
    x = (0.3 * np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)).astype(
        np.float32)
    c = frame_centres(x.size, SR, 100)
    est, _ = track(x, c, tracker)
    truth = f_inst[np.minimum(c, x.size - 1)]
    inner = slice(8, -8)
    err = cents(est[inner], truth[inner])
    assert np.max(np.abs(err)) < 50
    assert np.max(np.abs(np.diff(cents(est[inner], 1.0)))) < 100


@pytest.mark.parametrize("tracker", ALL)
def test_voiced_then_silent(tracker):
    x = np.concatenate([tone(330.0, 1.0), np.zeros(SR, np.float32)])
    c = frame_centres(x.size, SR, 100)
    est, conf = track(x, c, tracker)
    th = TRACKERS[tracker].voicing_threshold
    voiced = conf >= th
    assert voiced[5:90].mean() > 0.95
    assert voiced[110:].mean() < 0.05
    held = clean_f0(est, conf, th)
    # silence holds the last voiced pitch (a boundary frame may be a few cents off)
    assert np.all(np.abs(cents(held[110:], 330.0)) < 30)


def test_fast_tracker_rejects_noise():
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    _, conf = track(x, frame_centres(x.size, SR, 100), "fast")
    assert (conf >= TRACKERS["fast"].voicing_threshold).mean() < 0.05


def test_clean_f0_holds_and_backfills():
    f0 = np.array([100, 900, 200, 210, 5000, 220, 50], np.float32)
    conf = np.array([0.1, 0.2, 0.9, 0.9, 0.1, 0.9, 0.0], np.float32)
    assert clean_f0(f0, conf, 0.5).tolist() == [200, 200, 200, 210, 210, 220, 220]
    assert clean_f0(f0, conf, 0.5, causal=True).tolist() == [100, 100, 200, 210, 210, 220, 220]
    assert clean_f0(f0, np.zeros(7), 0.5).tolist() == [210.0] * 7


@pytest.mark.parametrize("window,max_lag", [(512, 256), (256, 128), (1024, 357)])
def test_difference_function_equals_its_definition(window, max_lag):
    """YIN's d(tau) from one FFT correlation (of as few points as the window) and running
    energies equals the sum of squared differences written out, and d' its cumulative-mean
    normalisation, at every lag."""
    rng = np.random.default_rng(3)
    frames = rng.standard_normal((4, window)) * np.array([[1.0], [0.1], [3.0], [0.0]])
    frames[0] += np.sin(2 * np.pi * 220.0 * np.arange(window) / SR)
    d, dn = difference(torch.from_numpy(frames), max_lag)
    w = window - max_lag
    for row, x in enumerate(frames - frames.mean(1, keepdims=True)):
        ref = np.array([np.sum((x[:w] - x[tau: tau + w]) ** 2) for tau in range(max_lag + 1)])
        np.testing.assert_allclose(d[row].numpy(), ref, rtol=1e-9, atol=1e-9 * window)
        cum = np.cumsum(ref[1:])
        ref_n = np.concatenate([[1.0], ref[1:] * np.arange(1, max_lag + 1)
                                / np.maximum(cum, 1e-12)])
        np.testing.assert_allclose(dn[row].numpy(), ref_n, rtol=1e-7, atol=1e-9)
