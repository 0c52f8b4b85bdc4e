from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def peak_hz(audio: np.ndarray, sample_rate: int) -> float:
    """Frequency of the largest spectral peak, refined by parabolic interpolation."""
    spec = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    i = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[i - 1: i + 2] + 1e-30)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (i + offset) * sample_rate / audio.size
