"""Decoders that run an ONNX graph through ONNX Runtime.

- The int8 models' stored quantized graphs: scaled inputs ``[B, F, 2]`` -> raw controls.
- ``runtime_decoder``: a float decoder exported on the fly (the GRU with its state as an input
  and an output), which ONNX Runtime runs faster than PyTorch on one CPU thread (GRU ~1.7x,
  cnn ~1.5x, tiny ~4x); ``Model`` uses it for inference (never for training, streaming or
  export).

Either way they take the same inputs as the PyTorch decoders, so ``Model``, chunked
rendering, transfer, render, demo and eval use them unchanged. Inference only.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch
from torch import nn


class OnnxDecoder(nn.Module):
    def __init__(self, onnx_bytes: bytes, receptive_field: tuple[int, int], n_parameters: int):
        super().__init__()
        import onnxruntime as ort

        self.onnx_bytes = onnx_bytes
        self._receptive_field = receptive_field
        self.n_parameters = n_parameters
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        # no spin-waiting after a run: ONNX Runtime's idle worker threads would otherwise take
        # the cores from the PyTorch synthesis that follows (2 threads: 2x slower end to end)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx_bytes, opts,
                                            providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        self.state_input = inputs[1] if len(inputs) > 1 else None

    @property
    def receptive_field(self) -> tuple[int, int]:
        return self._receptive_field

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        feeds = {self.input_name: x.detach().float().cpu().numpy()}
        if self.state_input is None:
            return torch.from_numpy(self.session.run(None, feeds)[0]), None
        if state is None:
            state = torch.zeros(1, x.shape[0], int(self.state_input.shape[-1]))
        feeds[self.state_input.name] = state.detach().float().cpu().numpy()
        out, nxt = self.session.run(None, feeds)
        return torch.from_numpy(out), torch.from_numpy(np.ascontiguousarray(nxt))


class RawDecoder(nn.Module):
    """A CNN decoder without its (always None) state: scaled inputs -> raw controls, the graph
    that ONNX files of CNN decoders hold."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(x)[0]


def runtime_decoder(decoder: nn.Module) -> OnnxDecoder:
    """A float decoder as an ONNX Runtime decoder: a GRUDecoder with state in and out, a CNN
    decoder as scaled inputs -> raw controls. ``decoder`` stays in eval mode."""
    decoder.eval()
    n_params = sum(p.numel() for p in decoder.parameters())
    buf = io.BytesIO()
    frames = {0: "batch", 1: "frames"}
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(decoder, "gru"):
            example = (torch.rand(1, 8, 2), torch.zeros(1, 1, decoder.gru.hidden_size))
            torch.onnx.export(decoder, example, buf, dynamo=False, opset_version=18,
                              input_names=["x", "state"], output_names=["raw", "next_state"],
                              dynamic_axes={"x": frames, "state": {1: "batch"},
                                            "raw": frames, "next_state": {1: "batch"}})
        else:
            # the wrapper in eval mode: the exporter restores the exported module's mode
            # recursively afterwards, which would leave a training-mode wrapper's decoder
            # training
            torch.onnx.export(RawDecoder(decoder).eval(), (torch.rand(1, 64, 2),), buf,
                              dynamo=False, opset_version=18, input_names=["x"],
                              output_names=["raw"], dynamic_axes={"x": frames, "raw": frames})
    return OnnxDecoder(buf.getvalue(), decoder.receptive_field, n_params)
