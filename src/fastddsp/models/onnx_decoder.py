"""Decoders that run an ONNX graph through ONNX Runtime.

- The int8 models' stored quantized graphs: scaled inputs ``[B, F, 2]`` -> raw controls.
- ``runtime_decoder``: a float GRU decoder exported on the fly with its state as an input and
  an output, which ONNX Runtime runs ~1.7x faster than PyTorch on one CPU thread; ``Model``
  uses it for inference (never for training, streaming or export).

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


def runtime_decoder(decoder: nn.Module) -> OnnxDecoder:
    """``decoder`` (a GRUDecoder) as an ONNX Runtime decoder with state in and out."""
    hidden = decoder.gru.hidden_size
    example = (torch.rand(1, 8, 2), torch.zeros(1, 1, hidden))
    buf = io.BytesIO()
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(decoder.eval(), example, buf, dynamo=False, opset_version=18,
                          input_names=["x", "state"], output_names=["raw", "next_state"],
                          dynamic_axes={"x": {0: "batch", 1: "frames"}, "state": {1: "batch"},
                                        "raw": {0: "batch", 1: "frames"},
                                        "next_state": {1: "batch"}})
    n_params = sum(p.numel() for p in decoder.parameters())
    return OnnxDecoder(buf.getvalue(), decoder.receptive_field, n_params)
