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


def shaped(name: str, max_harmonic_hz: float = 3000.0, floor: float | None = 3e-3):
    """Bundled model ``name`` with harmonic bandwidth ``max_harmonic_hz`` (0: Nyquist) and a
    noise floor of ``floor`` in every band (None: none), its decoder and room unchanged."""
    import dataclasses

    from fastddsp.models import Model, load

    base = load(name)
    model = Model(dataclasses.replace(base.config, max_harmonic_hz=max_harmonic_hz,
                                      noise_floor=floor is not None), stats=base.stats)
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert set(result.missing_keys) | set(result.unexpected_keys) <= {"synth.log_noise_floor"}
    if floor is not None:
        with torch.no_grad():
            model.synth.log_noise_floor.fill_(float(np.log(floor)))
    return model.eval()


def at_rate(name: str, sample_rate: int = 48000):
    """Bundled model ``name``'s decoder, noise floor and statistics in a config at
    ``sample_rate`` (250 frames/s), its reverb resampled: a stand-in high-rate model for
    testing the product's DSP at 48 kHz with harmonics up to Nyquist (its noise bands spread to
    the new Nyquist; the trained ``violin-*-48k`` models stop their harmonics at 16 kHz)."""
    import dataclasses

    import soxr

    from fastddsp.models import Model, load

    base = load(name)
    cfg = dataclasses.replace(base.config, sample_rate=sample_rate,
                              hop_size=round(sample_rate / base.frame_rate))
    model = Model(cfg, stats=base.stats)
    state = base.state_dict()
    ir = state["synth.reverb_ir"].numpy().astype(np.float64)
    state["synth.reverb_ir"] = torch.from_numpy(
        soxr.resample(ir, base.sample_rate, sample_rate)[: model.synth.reverb_ir.shape[-1]]
        * base.sample_rate / sample_rate).float()
    model.load_state_dict(state)
    return model.eval()
