"""The pretrained models shipped in the package: named, complete, and they play the pitch
they are given."""

import numpy as np
import pytest

import fastddsp
from fastddsp.features import extract_features
from fastddsp.models.config import PRESETS, preset_config

BUNDLED = fastddsp.bundled_models()
INSTRUMENTS = ("violin", "trumpet")
EXPECTED = ({f"{inst}-{preset}" for inst in INSTRUMENTS for preset in PRESETS}
            | {f"{inst}-{preset}-q" for inst in INSTRUMENTS for preset in ("cnn", "tiny")})
HIGH_RATE = {f"violin-{preset}-48k{q}" for preset in ("cnn", "tiny") for q in ("", "-q")}


def test_every_instrument_and_size_is_bundled():
    assert set(BUNDLED) >= EXPECTED | HIGH_RATE


@pytest.mark.parametrize("name", sorted((EXPECTED | HIGH_RATE) & set(BUNDLED)))
def test_bundled_model_loads_and_plays_its_pitch(name):
    model = fastddsp.load(name)
    inst, preset = name.split("-")[:2]
    assert model.config.preset == preset
    assert model.is_quantized == name.endswith("-q")
    assert model.sample_rate == (48000 if "-48k" in name else 16000)
    assert model.config.hop_size == model.sample_rate // 250
    same_size = fastddsp.Model(preset_config(preset, model.sample_rate))
    assert model.decoder_parameters == same_size.decoder_parameters
    stats = model.stats
    assert stats["training"]["steps"] > 0 and stats["train_seconds"] > 20
    mean = stats["pitch_midi"]["mean"]
    assert (65 < mean < 85) if inst == "violin" else (55 < mean < 75)
    f0 = 440.0 * 2 ** ((round(mean) - 69) / 12)
    n = 500
    ld = np.full(n, float(np.median(stats["loudness_db"]["quantiles"])))
    audio = model.synthesize(np.full(n, f0), ld)
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3
    f = extract_features(audio, model.sample_rate, pitch="crepe-tiny", frame_rate=100,
                         cache=False)
    voiced = f.confidence[20:-20] > 0.5
    assert voiced.mean() > 0.8
    cents = 1200 * np.log2(np.median(f.f0_hz[20:-20][voiced]) / f0)
    assert abs(cents) < 30


@pytest.mark.parametrize("name", sorted(HIGH_RATE & set(BUNDLED)))
def test_a_48k_violin_plays_above_8k_and_its_harmonics_stop_at_16k(name):
    model = fastddsp.load(name)
    assert "John Garner" in model.attribution and "MinJi Kim" in model.attribution
    assert model.config.n_harmonics == 80 and model.config.n_noise_bands == 129
    ld = np.full(500, float(np.quantile(model.stats["loudness_db"]["quantiles"], 0.75)))
    audio = model.synthesize(np.full(500, 440.0), ld)[48000:]  # past the onset
    spec = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / 48000)
    assert abs(freqs[np.argmax(spec)] - 440.0) < 2  # the loudest peak is the fundamental
    air = spec[freqs > 8000].sum() / spec.sum()
    assert air > 3e-5  # the band a 16 kHz model cannot play holds energy (1.3e-4 as trained)
    # f0 1130 Hz: harmonic 14 (15.82 kHz) stands far above the noise around it (2,700-600,000x
    # for harmonics 8-14 as trained); harmonic 15 (16.95 kHz) is past the harmonic bandwidth
    f0 = 1130.0
    audio = model.synthesize(np.full(500, f0), ld)[48000:]
    spec = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2

    def above_noise(k):
        near = np.abs(freqs - k * f0)
        return spec[near < 3].max() / np.median(spec[near < f0 / 2])
    assert min(above_noise(k) for k in range(8, 15)) > 100
    assert above_noise(15) < 3
