"""A decoder that runs a stored ONNX graph (the int8 models) through ONNX Runtime.

It takes the same scaled inputs ``[B, F, 2]`` as the PyTorch decoders and returns raw controls
``[B, F, n_out]``, so ``Model``, chunked rendering, transfer, render, demo and eval use it
unchanged. Inference only: it has no trainable parameters.
"""

from __future__ import annotations

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
        self.input_name = self.session.get_inputs()[0].name

    @property
    def receptive_field(self) -> tuple[int, int]:
        return self._receptive_field

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out), None
