import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import fastddsp
from fastddsp import Model, ModelFileError, UnknownModelError


@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    m = Model.from_preset("cnn", seed=3)
    m.train()
    m.decode(torch.rand(2, 100) * 500 + 100, torch.rand(2, 100) * -50)  # move BN statistics
    m.eval()
    m.stats = {"f0_midi_mean": 64.5, "loudness_quantiles": [-60.0, -30.0, -10.0]}
    path = m.save(tmp_path_factory.mktemp("m") / "violin")
    return m, path


def test_save_load_round_trip_is_bit_identical(trained_like):
    m, path = trained_like
    assert path.suffix == ".fddsp"
    m2 = fastddsp.load(path, runtime=m.runtime)  # the same decoder code: the same samples
    assert m2.config == m.config
    assert m2.stats == m.stats
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert sd.keys() == sd2.keys()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    f0, ld = np.full(300, 392.0), np.linspace(-50, -10, 300)
    assert np.array_equal(m.synthesize(f0, ld), m2.synthesize(f0, ld))


def test_file_has_no_pickle_and_readable_metadata(trained_like):
    _, path = trained_like
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8: 8 + n])
    meta = header["__metadata__"]
    assert meta["format"] == "fastddsp-model"
    assert json.loads(meta["config"])["channels"] == 128


def test_truncated_file_is_refused(trained_like, tmp_path):
    _, path = trained_like
    bad = tmp_path / "trunc.fddsp"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        fastddsp.load(bad)


def test_tampered_weights_fail_the_checksum(trained_like, tmp_path):
    _, path = trained_like
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40
    bad = tmp_path / "tampered.fddsp"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        fastddsp.load(bad)


def test_tampered_config_is_refused(trained_like, tmp_path):
    _, path = trained_like
    data = path.read_bytes().replace(b'\\"channels\\": 128', b'\\"channels\\": 999')
    assert data != path.read_bytes()
    bad = tmp_path / "cfg.fddsp"
    bad.write_bytes(data)
    with pytest.raises(ModelFileError):
        fastddsp.load(bad)


def test_other_files_are_refused(tmp_path):
    junk = tmp_path / "junk.fddsp"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelFileError):
        fastddsp.load(junk)
    plain = tmp_path / "plain.fddsp"
    save_file({"x": torch.zeros(3)}, str(plain))
    with pytest.raises(ModelFileError, match="not a fastddsp model"):
        fastddsp.load(plain)
    with pytest.raises(ModelFileError, match="directory"):
        fastddsp.load(tmp_path)
    with pytest.raises(ModelFileError, match="does not exist"):
        fastddsp.load(tmp_path / "missing.fddsp")
    with pytest.raises(UnknownModelError, match="unknown model 'violin-huge'"):
        fastddsp.load("violin-huge")


def test_failed_save_leaves_previous_file_intact(trained_like, tmp_path, monkeypatch):
    m, path = trained_like
    target = tmp_path / "keep.fddsp"
    target.write_bytes(path.read_bytes())
    import fastddsp.models.file as mf

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(mf, "save_file", broken)
    with pytest.raises(OSError):
        m.save(target)
    assert target.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.fddsp"]


def test_noise_floor_and_bandwidth_round_trip(tmp_path):
    from tests.conftest import shaped

    m = shaped("violin-tiny", 4000.0, 1e-3)
    m2 = fastddsp.load(m.save(tmp_path / "shaped"), runtime=m.runtime)
    assert m2.config.max_harmonic_hz == 4000.0 and m2.config.noise_floor is True
    torch.testing.assert_close(m2.synth.noise_floor, torch.full((65,), 1e-3))
    f0, ld = np.full(300, 392.0), np.linspace(-50, -10, 300)
    assert np.array_equal(m.synthesize(f0, ld), m2.synthesize(f0, ld))


def _forge(path, tensors, config: dict, stats: object = None, version: str = "2"):
    """A model file as an attacker would write it: any config, a valid checksum."""
    from fastddsp.models.file import tensor_digest

    meta = {"format": "fastddsp-model", "version": version, "config": json.dumps(config),
            "stats": json.dumps({} if stats is None else stats)}
    meta["sha256"] = tensor_digest(tensors, meta if version != "1" else None)
    save_file(tensors, str(path), metadata=meta)
    return path


def _tiny_parts():
    m = fastddsp.load("violin-tiny")
    return {k: v.contiguous().clone() for k, v in m.state_dict().items()}, m.config.to_dict()


def test_edited_statistics_fail_the_checksum(trained_like, tmp_path):
    _, path = trained_like
    data = path.read_bytes().replace(b'\\"f0_midi_mean\\": 64.5', b'\\"f0_midi_mean\\": 99.5')
    assert data != path.read_bytes()
    bad = tmp_path / "stats.fddsp"
    bad.write_bytes(data)
    with pytest.raises(ModelFileError, match="checksum"):
        fastddsp.load(bad)


@pytest.mark.parametrize(("field", "value"), [
    ("channels", 10 ** 9), ("hop_size", 10 ** 9), ("n_harmonics", 10 ** 7),
    ("n_noise_bands", 10 ** 8), ("dilations", [1] * 100_000), ("dilations", [10 ** 9]),
    ("sample_rate", "16000"), ("causal", "yes"), ("reverb_seconds", 1e9),
    ("max_harmonic_hz", float("inf")), ("channels", 8.5), ("channels", True),
])
@pytest.mark.parametrize("version", ["1", "2"])
def test_a_forged_config_is_refused_before_anything_is_allocated(tmp_path, field, value,
                                                                 version):
    tensors, config = _tiny_parts()
    path = _forge(tmp_path / "forged.fddsp", tensors, {**config, field: value}, version=version)
    with pytest.raises(ModelFileError, match=field):
        fastddsp.load(path)


@pytest.mark.parametrize("stats", [
    {"pitch_midi": {"mean": "high"}},
    {"pitch_midi": {"mean": 1e308 * 10}},
    {"loudness_db": {"quantiles": [-10.0, -20.0]}},
    {"loudness_db": {"quantiles": list(range(5000))}},
    {"loudness_db": {"quantiles": [-10.0, 1e6]}},
    ["not", "an", "object"],
])
def test_forged_statistics_are_refused(tmp_path, stats):
    tensors, config = _tiny_parts()
    path = _forge(tmp_path / "forged.fddsp", tensors, config, stats)
    with pytest.raises(ModelFileError, match="statistic"):
        fastddsp.load(path)


def test_version_1_files_still_load(tmp_path):
    tensors, config = _tiny_parts()
    stats = fastddsp.load("violin-tiny").stats
    old = fastddsp.load(_forge(tmp_path / "v1.fddsp", tensors, config, stats, version="1"))
    assert old.config == fastddsp.load("violin-tiny").config and old.stats == stats


def test_bundled_models_are_version_2():
    from safetensors import safe_open

    from fastddsp.models import bundled_models

    for name, path in bundled_models().items():
        with safe_open(str(path), framework="pt") as f:
            assert f.metadata()["version"] == "2", name
