"""The streaming pitch network: what it hears, that it runs the same in every way it is run
(eager, TorchScript, chunked, the offline tracker), and that its weights file is checked."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fastddsp.errors import ModelFileError
from fastddsp.features.pitch import track
from fastddsp.features.pitchnet import (
    HOP,
    N_BINS,
    N_FEATURES,
    PitchNet,
    bin_hz,
    frames_at,
    hz_bin,
    load_pitch_net,
    pad_input,
    run_net,
    weights_path,
)

SR = 16000
ROOT = Path(__file__).resolve().parents[2]


def harmonic(f0: float | np.ndarray, seconds: float, n_harm: int = 6,
             amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0, t.shape)) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, n_harm + 1))
    return (amp * x / np.abs(x).max()).astype(np.float32)


def cents(a: np.ndarray, b: float | np.ndarray) -> np.ndarray:
    return 1200 * np.log2(np.asarray(a, np.float64) / b)


@pytest.mark.parametrize("name,delay", [("net", 256), ("net-5ms", 80)])
def test_the_shipped_networks_have_their_size_and_lead(name, delay):
    net = load_pitch_net(name)
    assert N_FEATURES == 121 + 97 + 2 and N_BINS == 301
    h = net.hidden
    want = (N_FEATURES * h + h) + 3 * (2 * h * h + 2 * h) + (h * (N_BINS + 1) + N_BINS + 1)
    assert sum(p.numel() for p in net.parameters()) == want
    assert h == 96 and want == 106_382
    assert net.delay == delay


def test_bins_are_crepes_20_cent_bins_from_62_5_hz_to_2_khz():
    assert bin_hz(0) == pytest.approx(62.67, abs=0.01)
    assert bin_hz(N_BINS - 1) == pytest.approx(2005.5, abs=0.1)
    assert cents(bin_hz(1), bin_hz(0)) == pytest.approx(20.0)
    np.testing.assert_allclose(hz_bin(bin_hz(np.array([3.25, 150.0]))), [3.25, 150.0])


@pytest.mark.parametrize("tracker", ["net", "net-5ms"])
@pytest.mark.parametrize("f0", [110.0, 196.0, 440.0, 523.25, 880.0])
def test_a_steady_tone_is_tracked_to_within_5_cents(f0, tracker):
    x = harmonic(f0, 1.0)
    got, conf = track(x, np.arange(20, 80) * 160, tracker)
    assert np.max(np.abs(cents(got, f0))) < 5.0
    assert np.min(conf) > 0.5


def test_a_pure_sinusoid_is_refined_to_its_exact_period():
    """The network picks the bin; YIN's cosine fit on the difference function's dip gives the
    period, exact for a sinusoid (well under a cent, where a 20-cent bin could not be)."""
    f0 = 437.3
    x = (0.3 * np.sin(2 * np.pi * f0 * np.arange(SR) / SR)).astype(np.float32)
    got, _ = track(x, np.arange(20, 80) * 160, "net")
    assert np.max(np.abs(cents(got, f0))) < 0.5


@pytest.mark.parametrize("tracker", ["net", "net-5ms"])
def test_a_note_change_is_followed_within_tens_of_milliseconds(tracker):
    """A legato step from A4 to E5 in a dry tone: 40 ms after the change the new note is
    reported (the networks see 16 or 5 ms past each instant)."""
    f0 = np.where(np.arange(SR) < SR // 2, 440.0, 659.26)
    x = harmonic(f0, 1.0)
    got, _ = track(x, np.arange(0, SR, HOP), tracker)
    t = np.arange(got.size) * HOP / SR
    before, after = (t > 0.2) & (t < 0.49), t > 0.54
    assert np.max(np.abs(cents(got[before], 440.0))) < 10
    assert np.max(np.abs(cents(got[after][:-5], 659.26))) < 10


@pytest.mark.parametrize("tracker", ["net", "net-5ms"])
def test_silence_is_unvoiced(tracker):
    _, conf = track(np.zeros(SR, np.float32), np.arange(0, SR, 160), tracker)
    assert np.max(conf) < 0.5


def test_torchscript_eager_and_chunked_runs_agree():
    net = load_pitch_net()
    x = harmonic(300 * 2 ** (np.sin(np.linspace(0, 9, SR)) / 3), 1.0)
    ends = np.arange(250) * HOP + net.delay
    f0, conf = run_net(net, x, ends)
    f0c, confc = run_net(net, x, ends, chunk=7)      # the GRU's state carries over chunks
    np.testing.assert_allclose(f0c, f0, rtol=1e-5)
    np.testing.assert_allclose(confc, conf, atol=1e-5)
    with warnings.catch_warnings():   # "deprecated": still what nn~ hosts load
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(net)
    with torch.inference_mode():
        sf0, sconf, _ = scripted.track(frames_at(pad_input(x), ends),
                                       scripted.initial_state(1))
    np.testing.assert_allclose(sf0.numpy(), f0, rtol=1e-5)
    np.testing.assert_allclose(sconf.numpy(), conf, atol=1e-5)
    with pytest.raises(ValueError, match="consecutive"):
        run_net(net, x, ends[::2])


def test_a_batch_runs_each_row_as_alone():
    net = load_pitch_net()
    a, b = harmonic(220.0, 0.5), harmonic(587.0, 0.5)
    ends = np.arange(100) * HOP + net.delay
    frames = torch.cat([frames_at(pad_input(a), ends), frames_at(pad_input(b), ends)])
    with torch.inference_mode():
        f0, _, _ = net.track(frames, net.initial_state(2))
    np.testing.assert_allclose(f0[:100].numpy(), run_net(net, a, ends)[0], rtol=1e-5)
    np.testing.assert_allclose(f0[100:].numpy(), run_net(net, b, ends)[0], rtol=1e-5)


def test_an_altered_or_missing_weights_file_is_refused(tmp_path):
    tensors = load_file(str(weights_path("net")))
    from safetensors import safe_open

    with safe_open(str(weights_path("net")), "pt") as f:
        meta = f.metadata()
    tensors["out.bias"] = tensors["out.bias"] + 1e-3
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(ModelFileError, match="not an intact"):
        load_pitch_net(bad)
    with pytest.raises(ModelFileError, match="cannot read"):
        load_pitch_net(tmp_path / "absent.safetensors")


def test_the_training_recipe_runs(tmp_path):
    """The recipe's script end to end on synthetic tones (its --smoke mode, two steps): it
    writes a network that loads and tracks."""
    out = tmp_path / "net.safetensors"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_pitch_net.py"), "--smoke",
                        "--steps", "2", "--out", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    net = load_pitch_net(out)
    assert isinstance(net, PitchNet) and net.delay == 256
    f0, _ = run_net(net, harmonic(440.0, 0.2), np.arange(10) * HOP + 256)
    assert f0.shape == (10,) and np.all(np.isfinite(f0))


def test_cached_features_are_keyed_by_the_networks_weights(tmp_path, monkeypatch):
    """Features cached with one pitch network are not read back for a retrained one."""
    from fastddsp.features import pitchnet
    from fastddsp.features.extract import extract_features

    x = harmonic(330.0, 0.5)
    extract_features(x, SR, pitch="net", cache=tmp_path)
    extract_features(x, SR, pitch="net", cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    monkeypatch.setattr(pitchnet, "weights_digest", lambda name: "another network")
    extract_features(x, SR, pitch="net", cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_consecutive_frames_are_a_view_equal_to_the_gathered_windows():
    """Frames one hop apart are read as a strided view of the padded signal; they equal the
    windows gathered sample by sample; frames reaching past the padded signal (zeros there) or
    not one hop apart take the gathering path, with the same result."""
    x = np.random.default_rng(0).standard_normal(3000).astype(np.float32)
    padded = pad_input(x)

    def gathered(ends):
        idx = torch.from_numpy(np.asarray(ends))[:, None] + torch.arange(512)
        return padded[idx.clamp(0, padded.numel() - 1)]

    ends = np.arange(50) * HOP + 80
    view = frames_at(padded, ends)
    assert view.data_ptr() == padded[80:].data_ptr()          # no copy
    assert torch.equal(view, gathered(ends))
    np.testing.assert_array_equal(view[10].numpy(), x[10 * HOP + 80 - 512: 10 * HOP + 80])
    for ends in (np.arange(5) * HOP + 3400, np.array([80, 144, 300])):
        frames = frames_at(padded, ends)
        assert frames.is_contiguous() and torch.equal(frames, gathered(ends))
    assert not frames_at(padded, np.arange(5) * HOP + 3400)[-1, -100:].any()  # past the end
