import itertools

import numpy as np
import pytest

from fastddsp.dsp.limiter import CEILING, LimiterReport, forward_minimum, limit_chunks


def loud_phrase(sr: int) -> np.ndarray:
    t = np.arange(3 * sr) / sr
    x = np.sin(2 * np.pi * 440 * t) * np.where((t > 1) & (t < 2), 3.0, 0.5)
    x[int(2.2 * sr)] = 5.0  # and one sample far over full scale
    return x.astype(np.float32)


def split(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *sizes])
    return [x[a:b] for a, b in itertools.pairwise(edges)] + [x[edges[-1]:]]


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_no_sample_exceeds_the_ceiling_and_quiet_audio_passes_unchanged(sr):
    x = loud_phrase(sr)
    report = LimiterReport()
    y = np.concatenate(list(limit_chunks(iter([x]), sr, report=report)))
    assert y.size == x.size
    assert np.abs(y).max() <= CEILING
    assert report.max_reduction_db == pytest.approx(20 * np.log10(5.0 / CEILING), abs=0.05)
    # 0.5 s before the loud part and after the limiter has released: the input, sample for sample
    assert np.array_equal(y[: sr // 2], x[: sr // 2])
    assert np.abs(y[int(2.6 * sr):] - x[int(2.6 * sr):]).max() < 1e-3


def test_any_chunking_gives_the_same_samples():
    sr = 16000
    x = loud_phrase(sr)
    whole = np.concatenate(list(limit_chunks(iter([x]), sr)))
    for sizes in ([1] * 40, [7, 1000, 13, 31], [16000, 16000]):
        chunks = [c for c in split(x, sizes) if c.size]
        out = list(limit_chunks(iter(chunks), sr))
        assert np.array_equal(np.concatenate(out), whole)


def test_nothing_to_limit_reports_nothing():
    report = LimiterReport()
    x = 0.5 * np.sin(np.arange(8000) / 10).astype(np.float32)
    y = np.concatenate(list(limit_chunks(iter([x]), 16000, report=report)))
    assert np.array_equal(y, x) and report.max_reduction_db == 0.0


def test_a_signal_loud_from_its_first_sample_is_limited_there_too():
    x = (50 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    for chunks in ([x], [x[:0], x[:192], x[192:448], x[448:]],
                   [*(x[i: i + 1] for i in range(64)), x[64:]]):
        y = np.concatenate(list(limit_chunks(iter(chunks), 16000)))
        assert y.size == x.size and np.abs(y).max() <= CEILING


@pytest.mark.parametrize("width", [1, 2, 3, 31, 32, 33, 96, 100])
@pytest.mark.parametrize("n", [1, 7, 200, 1000])
def test_forward_minimum_is_the_minimum_over_the_next_width_samples(width, n):
    x = np.random.default_rng(width * 1000 + n).standard_normal(n)
    padded = np.concatenate([x, np.full(width - 1, x[-1])])
    expected = np.array([padded[t: t + width].min() for t in range(n)])
    assert np.array_equal(forward_minimum(x, width), expected)
