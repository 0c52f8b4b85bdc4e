"""Post-training static int8 quantization of a CNN decoder (the thesis' DDSP-CNN-Q and
DDSP-CNN-Tiny-Q rows), with ONNX Runtime.

The decoder is exported to ONNX, its six residual convolutions are quantized to int8 (QDQ,
per-channel weights, int8 activations calibrated on the training set's features); the input
convolution, which sees raw pitch and loudness, and the output projection stay in float:
quantizing them cost 0.06-0.4 of spectral distance, the residual stack alone costs <= 0.02.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from ..dsp.core import decoder_inputs
from ..errors import UserError
from ..models.model import Model
from ..models.onnx_decoder import OnnxDecoder, RawDecoder
from ..realtime.export import export_onnx
from .data import load_clips


def _calibration(data_dir: str | Path, max_clips: int = 64) -> list[np.ndarray]:
    clips, _ = load_clips(data_dir, "train")
    if not clips:
        raise UserError(f"{data_dir} has no training files to calibrate on")
    out = []
    for c in clips[:max_clips]:
        x = decoder_inputs(torch.from_numpy(c.f0_hz), torch.from_numpy(c.loudness_db))[None]
        out.append(x.numpy().astype(np.float32))
    return out


def quantize_model(model: Model, data_dir: str | Path) -> Model:
    """An int8 copy of ``model`` (a CNN decoder), calibrated on ``data_dir``'s training clips."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if model.config.decoder != "cnn" or model.is_quantized:
        raise UserError("only float CNN models (cnn, tiny) can be quantized")
    batches = _calibration(data_dir)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter({"x": b} for b in batches)

        def get_next(self):
            return next(self.items, None)

    graph = RawDecoder(model.decoder).eval()  # eval: the exporter restores the mode after
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f32, pre, q8 = (Path(tmp) / n for n in ("f32.onnx", "pre.onnx", "int8.onnx"))
        export_onnx(graph, (torch.from_numpy(batches[0]),), f32, ["x"])
        quant_pre_process(str(f32), str(pre))
        nodes = onnx.load(str(pre)).graph.node
        convs = [n.name for n in nodes if n.op_type == "Conv"]
        keep_float = convs[:1] + [n.name for n in nodes if n.op_type in ("MatMul", "Gemm")]
        quantize_static(str(pre), str(q8), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=keep_float)
        onnx_bytes = q8.read_bytes()
    q = Model(model.config, stats=dict(model.stats))
    q.attribution = model.attribution
    q.synth.load_state_dict(model.synth.state_dict())
    q.decoder = OnnxDecoder(onnx_bytes, model.decoder.receptive_field, model.decoder_parameters)
    q.stats["quantization"] = {"kind": "int8 static, ONNX Runtime QDQ, per-channel weights",
                               "calibration_clips": len(batches),
                               "float_layers": "input conv, output projection"}
    return q.eval()
