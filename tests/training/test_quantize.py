import numpy as np
import onnxruntime as ort
import pytest
import torch

import fastddsp
from fastddsp.cli.main import run
from fastddsp.dsp.spectral import multiscale_spectral_distance
from fastddsp.pipelines.score import Note, notes_to_features
from fastddsp.realtime.export import export_decoder
from fastddsp.training.data import prepare_dataset
from fastddsp.training.evaluate import evaluate_model
from fastddsp.training.quantize import quantize_model
from tests.synthetic import write_instrument


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    write_instrument(root / "audio", n_files=3, seconds=5.0)
    prepare_dataset(root / "audio", root / "data", pitch="fast", val_names=["take2.wav"])
    return root / "data"


MELODY = notes_to_features([Note(m, 0.5 * i, 0.45) for i, m in enumerate((69, 74, 76, 79))],
                           250.0)


@pytest.mark.parametrize("name", ["violin-tiny", "violin-cnn"])
def test_quantize_pipeline_round_trip_and_export(name, data_dir, tmp_path):
    f = fastddsp.load(name)
    q = quantize_model(f, data_dir)
    assert q.is_quantized and q.decoder_parameters == f.decoder_parameters
    assert torch.equal(q.synth.reverb_ir, f.synth.reverb_ir)
    q2 = fastddsp.load(q.save(tmp_path / "q.fddsp"))
    assert q2.is_quantized and q2.stats["quantization"]["calibration_clips"] == 2
    b = q2.synthesize(MELODY.f0_hz, MELODY.loudness_db)
    assert np.array_equal(b, q.synthesize(MELODY.f0_hz, MELODY.loudness_db))
    assert not np.array_equal(b, f.synthesize(MELODY.f0_hz, MELODY.loudness_db))
    # the int8 graph exports as it is stored and runs in ONNX Runtime on scaled inputs (of
    # loudness floored at the silence gate's open level, as Model.decode does)
    onnx_path = export_decoder(q2, tmp_path / "q.onnx", "onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    f0 = torch.from_numpy(MELODY.f0_hz[None])
    ld = torch.from_numpy(MELODY.loudness_db[None])
    floored = ld.clamp(min=q2.silence_gate_db[1])
    x = torch.stack([fastddsp.dsp.scale_f0(f0), fastddsp.dsp.scale_loudness(floored)], -1)
    out = sess.run(None, {"x": x.numpy()})[0]
    assert np.allclose(out, q2.decode(f0, ld).numpy(), atol=1e-6)


@pytest.mark.parametrize("name", ["violin-tiny", "violin-cnn", "trumpet-tiny", "trumpet-cnn"])
def test_shipped_int8_models_stay_close_to_float(name):
    f, q = fastddsp.load(name), fastddsp.load(f"{name}-q")
    a = f.synthesize(MELODY.f0_hz, MELODY.loudness_db)
    b = q.synthesize(MELODY.f0_hz, MELODY.loudness_db)  # same noise seed
    dist = multiscale_spectral_distance(torch.from_numpy(b)[None], torch.from_numpy(a)[None])
    assert 0 < dist.item() < 1.5


def test_quantize_refuses_full_and_int8(data_dir, tmp_path):
    with pytest.raises(fastddsp.UserError, match="only float CNN"):
        quantize_model(fastddsp.load("violin-full"), data_dir)
    with pytest.raises(fastddsp.UserError, match="only float CNN"):
        quantize_model(fastddsp.load("violin-tiny-q"), data_dir)
    assert run(["quantize", "violin-tiny", str(tmp_path / "nowhere"), "-o",
                str(tmp_path / "x.fddsp")]) == 2
    assert not (tmp_path / "x.fddsp").exists()
    assert run(["export", "violin-tiny", "--int8", "-o", str(tmp_path / "x.onnx")]) == 2


@pytest.mark.parametrize("name", ["violin-tiny", "violin-cnn"])
def test_int8_costs_little_on_a_held_out_clip(shared_data, name):
    clip = shared_data / "violin" / "violin_14.wav"
    f = evaluate_model(fastddsp.load(name), clip, features_pitch="crepe-tiny",
                       score_pitch="fast").mean()["spectral_distance"]
    q = evaluate_model(fastddsp.load(f"{name}-q"), clip, features_pitch="crepe-tiny",
                       score_pitch="fast").mean()["spectral_distance"]
    assert abs(q - f) < 0.1, (f, q)
