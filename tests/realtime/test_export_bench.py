import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fastddsp import Model
from fastddsp.cli.main import run
from fastddsp.realtime.export import DecoderGraph, export_decoder


def inputs(batch=2, frames=333):
    gen = torch.Generator().manual_seed(5)
    return (150 + 600 * torch.rand(batch, frames, generator=gen),
            -70 + 60 * torch.rand(batch, frames, generator=gen))


@pytest.fixture(scope="module", params=["tiny", "cnn", "full"])
def model(request):
    m = Model.from_preset(request.param, seed=2)
    m.train()
    m.decode(*inputs(4, 200))  # non-trivial norm statistics
    return m.eval()


def test_onnx_decoder_matches_pytorch(model, tmp_path):
    path = export_decoder(model, tmp_path / "d.onnx", "onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f0, ld = inputs()  # other batch size and length than the export example
    out = sess.run(None, {"f0_hz": f0.numpy(), "loudness_db": ld.numpy()})[0]
    with torch.no_grad():
        ref = DecoderGraph(model)(f0, ld).numpy()
    assert out.shape == ref.shape == (2, 333, 126)
    assert np.max(np.abs(out - ref)) < 1e-4


def test_torchscript_decoder_matches_pytorch(model, tmp_path):
    path = export_decoder(model, tmp_path / "d.pt", "torchscript")
    loaded = torch.jit.load(str(path))
    f0, ld = inputs()
    with torch.no_grad():
        assert torch.allclose(loaded(f0, ld), DecoderGraph(model)(f0, ld), atol=1e-5)


def test_export_cli(tmp_path, capsys):
    assert run(["export", "tiny-model-that-does-not-exist", "-o", str(tmp_path / "x.onnx")]) == 2
    m = Model.from_preset("tiny").save(tmp_path / "m.fddsp")
    assert run(["export", str(m), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_bench_quick_prints_and_writes_figures(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert run(["bench", "--quick", "--models", "tiny", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "decoder onnxruntime fp32" in printed and "features fast" in printed
    rows = json.loads(out.read_text())
    names = {r["name"] for r in rows}
    assert {"decoder", "end-to-end", "decoder pytorch eager", "decoder torchscript",
            "decoder onnxruntime fp32",
            "features fast", "features crepe-tiny"} <= names
    timings = [r for r in rows if r["name"] != "peak memory"]
    assert all(r["realtime_factor"] > 0 for r in timings)
    # end to end through the public API, on real-performance controls and on the steady note
    assert sorted(r["controls"] for r in rows if r["name"] == "end-to-end") == \
        ["realistic", "steady"]
    assert "end-to-end (steady note)" in printed
    memory = [r for r in rows if r["name"] == "peak memory"]
    assert len(memory) == 1 and memory[0]["peak_rss_mib"] >= memory[0]["rss_loaded_mib"] > 50
    assert run(["bench", "--threads", "0"]) == 2


def test_bench_stream_quick(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert run(["bench", "--stream", "--quick", "--models", "violin-tiny", "--json",
                str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["block"] for r in rows] == [64, 128, 256]
    for r in rows:
        assert r["blocks"] == 500 and 0 < r["median_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["latency_ms"] == 20.0 and abs(r["latency_measured_ms"] - 20.0) < 1.0


def test_bench_plays_a_real_performance_in_the_models_range():
    from fastddsp.bench import realistic_controls
    from fastddsp.models import load

    model = load("violin-tiny")
    f0, ld = realistic_controls(model, 6.0)
    assert f0.shape == ld.shape == (1500,)
    midi = 12 * np.log2(f0 / 440.0) + 69
    moves = np.abs(np.diff(midi))
    assert np.percentile(moves, 90) > 0.05       # vibrato and slides: the pitch keeps moving
    assert np.ptp(midi) > 12                     # more than an octave
    q = model.stats["loudness_db"]["quantiles"]
    sounding = ld > -80
    assert 0.3 < sounding.mean() < 1.0           # rests and notes
    assert q[0] - 10 < np.median(ld[sounding]) < q[-1] + 1  # at the training loudness
    lo, hi = np.percentile(midi, [10, 90])
    mean = model.stats["pitch_midi"]["mean"]
    assert lo > mean - 18 and hi < mean + 18      # in the violin's range, as transfer puts it
