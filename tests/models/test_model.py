import numpy as np
import pytest

import fastddsp
from fastddsp import Model, UserError
from tests.conftest import peak_hz


def test_synthesize_is_deterministic_per_seed():
    m = Model.from_preset("tiny")
    f0, ld = np.full(250, 330.0), np.full(250, -25.0)
    a = m.synthesize(f0, ld)
    assert np.array_equal(a, m.synthesize(f0, ld))
    assert not np.array_equal(a, m.synthesize(f0, ld, seed=1))


def test_synthesized_pitch_follows_f0():
    # Force a pure fundamental: bias the decoder's output towards harmonic 1, no noise.
    m = Model.from_preset("tiny")
    import torch
    with torch.no_grad():
        m.decoder.proj.weight.zero_()
        m.decoder.proj.bias.fill_(-20.0)
        m.decoder.proj.bias[0] = 3.0   # amplitude
        m.decoder.proj.bias[1] = 10.0  # harmonic 1
        m.synth.reverb_ir.zero_()
    audio = m.synthesize(np.full(1000, 523.25), np.full(1000, -20.0))
    assert peak_hz(audio, 16000) == pytest.approx(523.25, abs=1.0)


@pytest.mark.parametrize(("f0", "ld", "msg"), [
    ([], [], "empty"),
    ([440.0, float("nan")], [-20.0, -20.0], "NaN"),
    ([440.0, 440.0], [-20.0], "length"),
    ([-1.0], [-20.0], "negative"),
    ([[440.0]], [[-20.0]], "1-D"),
])
def test_synthesize_rejects_bad_input(f0, ld, msg):
    with pytest.raises(UserError, match=msg):
        Model.from_preset("tiny").synthesize(f0, ld)


def test_gru_decoder_runs_in_onnxruntime_at_inference_only():
    import torch

    from fastddsp.dsp import decoder_inputs
    from fastddsp.models import Model
    from fastddsp.models.onnx_decoder import OnnxDecoder

    model = Model.from_preset("full", seed=3)
    model.runtime = "onnxruntime"
    f0 = 200 + 300 * torch.rand(2, 120)
    ld = -60 + 50 * torch.rand(2, 120)
    x = decoder_inputs(f0, ld)
    with torch.no_grad():
        want, want_state = model.decoder(x)
        got, state = model.decode_step(f0[:, :70], ld[:, :70])
        rest, got_state = model.decode_step(f0[:, 70:], ld[:, 70:], state)
    assert isinstance(model._runtime_decoder(), OnnxDecoder)
    torch.testing.assert_close(torch.cat([got, rest], 1), want, atol=1e-4, rtol=0)
    torch.testing.assert_close(got_state, want_state, atol=1e-4, rtol=0)
    model.train()  # training: PyTorch, with gradients
    out = model.decode(f0, ld)
    assert out.requires_grad
    model.eval()
    with torch.no_grad():  # new weights -> a new graph
        for p in model.decoder.parameters():
            p.mul_(0.5)
        halved = model.decode(f0, ld)
        torch.testing.assert_close(halved, model.decoder(x)[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("preset", ["tiny", "cnn"])
def test_cnn_decoders_run_in_onnxruntime_at_inference(preset):
    import torch

    from fastddsp.dsp import decoder_inputs
    from fastddsp.models import Model
    from fastddsp.models.onnx_decoder import OnnxDecoder

    model = Model.from_preset(preset, seed=5)
    model.runtime = "onnxruntime"
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode matters
        for name, buf in model.decoder.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0.0, 0.5)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    f0 = 200 + 300 * torch.rand(2, 300)
    ld = -60 + 50 * torch.rand(2, 300)
    with torch.no_grad():
        want = model.decoder(decoder_inputs(f0, ld))[0]
        got = model.decode(f0, ld)
    assert isinstance(model._runtime_decoder(), OnnxDecoder)
    assert not model.decoder.training  # the export left the PyTorch decoder in eval mode
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert model._runtime_decoder() is model._runtime_decoder()  # cached while unchanged
    with torch.no_grad():
        next(model.decoder.parameters()).mul_(0.5)
        torch.testing.assert_close(model.decode(f0, ld), model.decoder(decoder_inputs(f0, ld))[0],
                                   atol=1e-4, rtol=0)


def test_the_runtime_is_an_explicit_choice(monkeypatch):
    import torch

    from fastddsp.models import Model

    assert fastddsp.load("violin-tiny").runtime == "onnxruntime"  # load's documented default
    assert Model.from_preset("tiny").runtime == "torch"           # a new model: PyTorch
    model = fastddsp.load("violin-tiny", runtime="torch")
    assert model.describe()["runtime"] == "torch"
    f0, ld = torch.full((1, 50), 330.0), torch.linspace(-50, -20, 50)[None]
    with torch.no_grad():
        reference = model.decode(f0, ld)

    def refuse(*args):
        raise AssertionError("runtime='torch' ran ONNX Runtime")

    monkeypatch.setattr(Model, "_runtime_decoder", refuse)
    with torch.no_grad():
        assert torch.equal(model.decode(f0, ld), reference)
    model.runtime = "onnxruntime"
    with torch.no_grad(), pytest.raises(AssertionError, match="ran ONNX Runtime"):
        model.decode(f0, ld)
    with pytest.raises(fastddsp.UserError, match="unknown runtime"):
        fastddsp.load("violin-tiny", runtime="tensorflow")
    assert fastddsp.load("violin-tiny-q").describe()["runtime"] == "onnxruntime"


def test_the_decoder_sees_loudness_floored_at_the_training_range_at_inference():
    import torch

    model = fastddsp.load("violin-tiny")
    floor = model.silence_gate_db[1]  # the training set's quietest loudness
    f0 = torch.full((1, 200), 440.0)
    quiet = torch.full((1, 200), -80.0)
    with torch.no_grad():
        assert torch.equal(model.decode(f0, quiet), model.decode(f0, torch.full_like(quiet, floor)))
        louder = model.decode(f0, torch.full_like(quiet, floor + 10))
        assert not torch.allclose(louder, model.decode(f0, quiet))
        raw = model.decoder(fastddsp.dsp.decoder_inputs(f0, quiet))[0]  # unfloored
        assert not torch.allclose(raw, model.decode(f0, quiet), atol=1e-3)
    silent = model.synthesize(f0[0].numpy(), quiet[0].numpy())
    assert np.abs(silent).max() == 0.0  # and the silence gate keeps silence silent


def test_noise_floor_and_bandwidth_shape_the_controls_and_close_with_the_gate():
    import torch

    from fastddsp.models.config import ModelConfig
    from tests.conftest import shaped

    base, model = shaped("trumpet-cnn", 0.0, None), shaped("trumpet-cnn", 3000.0, 2e-3)
    assert base.config.noise_floor is False and base.synth.noise_floor is None
    f0, ld = torch.full((1, 200), 440.0), torch.full((1, 200), -30.0)
    with torch.no_grad():
        c, c0 = model.controls(f0, ld), base.controls(f0, ld)
    torch.testing.assert_close(c.noise - c0.noise, torch.full_like(c.noise, 2e-3))
    k = torch.arange(1, 61)
    assert c.harmonics[0][:, 440 * k >= 3000].abs().max() == 0.0   # 6 harmonics below 3 kHz
    assert torch.count_nonzero(c.harmonics[0, 100]).item() == 6
    torch.testing.assert_close(c.harmonics.sum(-1), c0.harmonics.sum(-1))
    # in silence the gate closes on the floor too
    silent = model.synthesize(f0[0].numpy(), np.full(200, -100.0, np.float32))
    assert np.abs(silent).max() == 0.0
    rest = model.synthesize(f0[0].numpy(), np.full(200, -30.0, np.float32))
    assert np.abs(rest).max() > 0.0
    with pytest.raises(ValueError, match="max_harmonic_hz"):
        ModelConfig(decoder="cnn", channels=8, causal=True, max_harmonic_hz=-1.0)


def test_the_exported_decoder_is_cached_and_leaves_the_global_rng_alone(tmp_path, monkeypatch):
    import numpy as np
    import torch

    monkeypatch.setenv("FASTDDSP_CACHE", str(tmp_path / "cache"))
    f0, ld = np.full(200, 330.0), np.linspace(-40, -20, 200)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = fastddsp.load("violin-cnn").synthesize(f0, ld)
    assert torch.equal(torch.get_rng_state(), before)  # the export drew no random numbers
    (graph,) = (tmp_path / "cache" / "decoders").glob("*.onnx")

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)  # a new process: read, not exported
    assert np.array_equal(fastddsp.load("violin-cnn").synthesize(f0, ld), first)
    graph.write_bytes(b"damaged")                          # a damaged entry is made again
    monkeypatch.undo()
    monkeypatch.setenv("FASTDDSP_CACHE", str(tmp_path / "cache"))
    assert np.array_equal(fastddsp.load("violin-cnn").synthesize(f0, ld), first)
    assert graph.read_bytes() != b"damaged"


def test_writing_an_exported_decoder_keeps_the_cache_within_its_bound(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("FASTDDSP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    old = tmp_path / "cache" / "old-features.npz"
    old.write_bytes(b"x" * 300_000)
    os.utime(old, (1, 1))                                  # the least recently used entry
    monkeypatch.setenv("FASTDDSP_CACHE_MAX_MB", "0.1")     # tiny's graph fits, with the old not
    fastddsp.load("violin-tiny").synthesize(np.full(50, 330.0), np.full(50, -30.0))
    assert not old.exists()
    assert len(list((tmp_path / "cache" / "decoders").glob("*.onnx"))) == 1
