"""Exports for other hosts: the nn~ TorchScript module and the whole-chain ONNX graph."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fastddsp.cli.main import run
from fastddsp.errors import UserError
from fastddsp.models import load
from fastddsp.models.chain import ChainStep
from fastddsp.realtime.chain_graph import GraphStep, export_chain
from fastddsp.realtime.nn_tilde import export_nn_tilde
from fastddsp.realtime.stream import Stream
from tests.conftest import shaped
from tests.realtime.test_stream import melody

HOP = 64


@pytest.mark.parametrize("name", ["violin-tiny", "shaped"])
def test_nn_tilde_module_follows_the_conventions_and_streams(tmp_path, name):
    model = shaped("violin-tiny") if name == "shaped" else load(name)
    export_nn_tilde(model, tmp_path / "violin.ts")
    ts = torch.jit.load(str(tmp_path / "violin.ts"))
    assert ts.get_methods() == ["forward", "synthesize", "synthesize_voices"]
    assert ts.forward_params.tolist() == [1, 1, 1, 1]
    assert ts.synthesize_params.tolist() == [2, 1, 1, 1]
    assert ts.synthesize_voices_params.tolist() == [16, 1, 1, 1]
    assert ts.get_attributes() == ["octave", "pitch_shift", "loudness"]
    assert [ts.octave_params.tolist(), ts.loudness_params.tolist()] == [[1], [2]]
    assert len(ts.synthesize_input_labels) == 2 and ts.sr == 16000 and ts.latency() == 320
    x = melody(1.0)
    stream = Stream(model, 512, octave=1, loudness_db=-3.0)
    assert ts.set_octave(1) == 0 and ts.set_loudness(-3.0) == 0 and ts.get_octave() == 1
    with torch.inference_mode():
        got = np.concatenate([ts(torch.from_numpy(x[i: i + 512])[None, None])[0, 0].numpy()
                              for i in range(0, x.size, 512)])
    want = np.concatenate([stream.process(x[i: i + 512]) for i in range(0, x.size, 512)])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(want).max() > 0.01
    with torch.inference_mode():  # mc.nn~ calls with a batch
        assert ts(torch.zeros(4, 1, 256)).shape == (4, 1, 256)
        assert ts.synthesize(torch.zeros(1, 2, 300)).shape == (1, 1, 300)


def test_nn_tilde_voices_are_the_mono_engines_in_one_room(tmp_path):
    """synthesize_voices: each voice pair of inlets is a voice, all in one reverb; the reverb
    is linear, so the mix equals the sum of the same voices each through its own reverb."""
    model = load("violin-cnn")
    export_nn_tilde(model, tmp_path / "v.ts", voices=3)
    ts = torch.jit.load(str(tmp_path / "v.ts"))
    assert ts.synthesize_voices_params.tolist() == [6, 1, 1, 1]
    assert ts.synthesize_voices_input_labels[:2] == ["(signal) voice 1 f0 in Hz",
                                                     "(signal) voice 1 loudness in dB"]
    n = 16000
    t = torch.arange(n) / 16000.0
    f0 = torch.stack([440 * 2 ** (v / 12 + 0.02 * torch.sin(6 * t)) for v in (0, 4, 7)])
    ld = torch.stack([-30 + 10 * torch.sin(t * (2 + v)) for v in range(3)])
    x = torch.stack([f0, ld], 1).reshape(1, 6, n)   # f0 1, loudness 1, f0 2, ...
    separate = Stream(model, 256).engine
    with torch.inference_mode():
        got = torch.cat([ts.synthesize_voices(x[..., i: i + 256]) for i in range(0, n, 256)],
                        -1)[0, 0].numpy()
        want = torch.cat([separate.synthesize(f0[:, i: i + 256], ld[:, i: i + 256])
                          for i in range(0, n, 256)], -1).sum(0).numpy()
    assert np.abs(want).max() > 0.05
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_nn_tilde_refuses_an_int8_model(tmp_path):
    with pytest.raises(UserError, match="int8"):
        export_nn_tilde(load("violin-tiny-q"), tmp_path / "x.ts")


def controls(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    f0 = 440 * 2 ** (torch.sin(torch.linspace(0, 6, n)) / 2)
    ld = -30 + 20 * torch.sin(torch.linspace(0, 9, n))
    return f0[None], ld[None]


def run_steps(fn, f0, ld, state, sizes):
    outs, s = [], 0
    for n in sizes:
        out, *state = fn(f0[:, s: s + n], ld[:, s: s + n], s, state)
        outs.append(out)
        s += n
    return np.concatenate(outs, 1)[0]


def stepped(step: ChainStep):
    def fn(a, b, s, st):
        out, new_state = step.step(a, b, torch.tensor([s]), list(st))
        return [out, *new_state]
    return fn


@pytest.mark.parametrize("name", ["trumpet-tiny", "violin-full", "violin-cnn", "shaped"])
def test_chain_step_equals_one_pass_rendering_delayed(name):
    model = shaped("violin-cnn") if name == "shaped" else load(name)
    step = ChainStep(model)
    f0, ld = controls(300)
    sizes = [16, 50, 3, 100, 131]
    with torch.inference_mode():
        got = run_steps(stepped(step), f0, ld, step.initial_state(), sizes)
        want = model(f0, ld, seed=0)[0].numpy()   # the training path: one pass, not stepped
    delay = (1 + step.look) * HOP
    assert np.abs(got[:delay]).max() == 0.0
    n = got.size - delay - HOP                     # one pass holds its last frame
    np.testing.assert_allclose(got[delay: delay + n], want[:n], atol=1e-5)
    assert np.abs(want).max() > 0.01


def test_the_stream_runs_the_chain_step():
    model = load("violin-cnn")
    f0, ld = controls(300)
    step = ChainStep(model)
    with torch.inference_mode():
        want = run_steps(stepped(step), f0, ld, step.initial_state(), [300])
    stream = Stream(model, 256)
    got = stream.synthesize(np.repeat(f0[0].numpy(), HOP), np.repeat(ld[0].numpy(), HOP))
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name", ["violin-tiny", "trumpet-full", "trumpet-cnn", "shaped"])
def test_chain_onnx_graph_matches_pytorch(tmp_path, name):
    if name == "shaped":  # a noise floor and a harmonic bandwidth
        model = shaped("trumpet-cnn")
        export_chain(model, tmp_path / "chain.onnx")
    else:
        model = load(name)
        assert run(["export", name, "--format", "chain-onnx", "-o",
                    str(tmp_path / "chain.onnx")]) == 0
    sess = ort.InferenceSession(str(tmp_path / "chain.onnx"))
    names = [i.name for i in sess.get_inputs()]
    step = GraphStep(model)
    f0, ld = controls(400)
    sizes = [250, 16, 134]         # a whole phrase at once, then stream-sized calls

    def onnx_fn(a, b, s, st):
        feeds = dict(zip(names, [a.numpy(), b.numpy(), np.array([s], np.int64),
                                 *[t.numpy() if isinstance(t, torch.Tensor) else t
                                   for t in st]], strict=True))
        return sess.run(None, feeds)

    got = run_steps(onnx_fn, f0, ld, step.chain.initial_state(), sizes)
    with torch.no_grad():
        want = run_steps(lambda a, b, s, st: list(step(a, b, torch.tensor([s]), *st)),
                         f0, ld, step.chain.initial_state(), sizes)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_chain_graph_refuses_an_int8_model():
    with pytest.raises(UserError, match="float"):
        GraphStep(load("violin-tiny-q"))


def test_export_cli_nn_tilde(tmp_path):
    assert run(["export", "violin-tiny", "--format", "nn-tilde", "-o",
                str(tmp_path / "v.ts")]) == 0
    assert (tmp_path / "v.ts").stat().st_size > 0
    assert run(["export", "violin-tiny-q", "--format", "chain-onnx", "-o",
                str(tmp_path / "c.onnx")]) == 2
    assert not (tmp_path / "c.onnx").exists()
