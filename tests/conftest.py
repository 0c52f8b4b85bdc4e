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


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory, monkeypatch):
    """Keep the feature cache out of the user's home during tests."""
    monkeypatch.setenv("FASTDDSP_CACHE", str(tmp_path_factory.getbasetemp() / "feature-cache"))


def tone(f0: float, seconds: float, sr: int = 16000, harmonics: tuple[float, ...] = (1.0, 0.5, 0.3),
         amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t + k) for k, a in enumerate(harmonics)
            if f0 * (k + 1) < sr / 2)
    return (amplitude * x / sum(harmonics)).astype(np.float32)
