"""The pretrained models shipped in the package: named, complete, and they play the pitch
they are given."""

import numpy as np
import pytest

import fastddsp
from fastddsp.features import extract_features
from fastddsp.models.config import PRESETS

BUNDLED = fastddsp.bundled_models()
INSTRUMENTS = ("violin", "trumpet")
EXPECTED = ({f"{inst}-{preset}" for inst in INSTRUMENTS for preset in PRESETS}
            | {f"{inst}-{preset}-q" for inst in INSTRUMENTS for preset in ("cnn", "tiny")})


def test_every_instrument_and_size_is_bundled():
    assert set(BUNDLED) >= EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED & set(BUNDLED)))
def test_bundled_model_loads_and_plays_its_pitch(name):
    model = fastddsp.load(name)
    inst, preset = name.split("-")[:2]
    assert model.config.preset == preset
    assert model.is_quantized == name.endswith("-q")
    assert model.decoder_parameters == fastddsp.Model.from_preset(preset).decoder_parameters
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
