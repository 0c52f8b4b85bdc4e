import numpy as np
import pytest

from fastddsp.features.loudness import a_weighting_db, frame_centres, loudness_db, shifted_loudness

SR = 16000


def steady(x: np.ndarray, sr: int = SR, frame_rate: float = 250.0) -> float:
    ld = loudness_db(x, sr, frame_rate)
    return float(np.median(ld[len(ld) // 4: -len(ld) // 4]))


def sine(f, amp, seconds=2.0, sr=SR):
    return amp * np.sin(2 * np.pi * f * np.arange(int(seconds * sr)) / sr)


@pytest.mark.parametrize(("signal", "expected"), [
    (np.zeros(2 * SR), -80.0),
    (sine(1000, 1.0), 19.81),
    (sine(1000, 0.1), -0.19),
    (sine(110, 0.5), -3.78),
])
def test_matches_ddsp_reference_values(signal, expected):
    assert steady(signal) == pytest.approx(expected, abs=0.05)


def test_a_weighting_curve():
    db = a_weighting_db(np.array([0.0, 100.0, 1000.0, 10000.0]))
    assert db.tolist() == pytest.approx([-80.0, -19.1, 0.0, -2.5], abs=0.1)


def test_no_upper_clip():
    assert steady(sine(2000, 4.0)) > 25.0


@pytest.mark.parametrize(("sr", "rate"), [(16000, 250.0), (44100, 100.0), (48000, 250.0),
                                          (22050, 86.0)])
def test_any_sample_and_frame_rate(sr, rate):
    x = sine(1000, 0.1, seconds=1.5, sr=sr)
    ld = loudness_db(x, sr, rate)
    assert ld.size == frame_centres(x.size, sr, rate).size == int(np.ceil(1.5 * rate - 1e-9))
    assert ld.dtype == np.float32
    # edges are quieter (zero padding), the middle is steady
    assert np.ptp(ld[len(ld) // 4: -len(ld) // 4]) < 0.01


def test_shifted_loudness_keeps_silence_and_never_goes_below_it():
    ld = np.array([-80.0, -75.0, -30.0, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(shifted_loudness(ld, 6.0), [-80.0, -69.0, -24.0, 8.0])
    np.testing.assert_array_equal(shifted_loudness(ld, -10.0), [-80.0, -80.0, -40.0, -8.0])
    assert shifted_loudness(ld, 3.0).dtype == np.float32
