"""Exporting a model's decoder as a standalone graph for other runtimes.

The exported graph takes ``f0_hz`` and ``loudness_db`` ``[batch, frames]`` (any batch and
length) and returns the raw controls ``[batch, frames, 1 + harmonics + noise bands]``: the
input scaling (loudness floored at the model's silence-gate open level, as at inference) and
the decoder, frozen (turning raw controls into amplitudes is ``dsp.synth.gated_controls`` with
the model's config, ``max_harmonic_hz`` included, and its ``synth.noise_floor``).
``DecoderGraph`` is the PyTorch module it must match (tested: ONNX
Runtime and TorchScript within 1e-4). An int8 model's decoder is written as its stored
quantized graph, whose input is the scaled ``x`` ``[batch, frames, 2]`` (``midi(f0)/127``,
``loudness_db/80 + 1``, the loudness floored the same way first). The decoder together with
the DSP chain is ``chain_graph.export_chain``; the streaming engine for nn~ is
``nn_tilde.export_nn_tilde``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_path
from ..dsp.core import decoder_inputs
from ..errors import UserError
from ..models.model import Model

FORMATS = ("onnx", "torchscript")


class DecoderGraph(nn.Module):
    """Scaling + decoder: pitch and loudness -> raw controls, as ``Model.decode`` at inference
    (loudness floored at the silence gate's open level first)."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model.eval()
        self.floor_db = float(model.silence_gate_db[1])

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(decoder_inputs(f0_hz, loudness_db, self.floor_db))[0]


def _example(model: Model, frames: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    f0 = 200 + 400 * torch.rand(1, frames, generator=gen)
    ld = -60 + 50 * torch.rand(1, frames, generator=gen)
    return f0, ld


def export_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
                input_names: list[str], output_name: str = "raw") -> None:
    """``torch.onnx.export`` as this project uses it (TorchScript-based exporter, opset 18,
    dynamic batch and frame axes on every input and the output), quietly."""
    axes = {0: "batch", 1: "frames"}
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), dynamo=False, opset_version=18,
                          input_names=input_names, output_names=[output_name],
                          dynamic_axes={name: axes for name in [*input_names, output_name]})


def export_decoder(model: Model, path: str | Path, fmt: str = "onnx") -> Path:
    """Write the decoder graph of ``model`` to ``path`` (atomically) as ONNX or TorchScript."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    path = Path(path)
    if model.is_quantized:  # an int8 model: its decoder already is an ONNX graph
        if fmt != "onnx":
            raise UserError("an int8 model exports to ONNX only")
        with atomic_path(path) as tmp:
            tmp.write_bytes(model.decoder.onnx_bytes)
        return path
    graph = DecoderGraph(model)
    example = _example(model)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            traced = torch.jit.trace(graph, example, check_trace=False)
            traced.save(str(tmp))
        else:
            export_onnx(graph, example, tmp, ["f0_hz", "loudness_db"])
    return path
