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
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..cache import trim_cache


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


EXPORT_VERSION = 1  # bump when the export below changes: cached graphs are then remade


def _export_key(decoder: nn.Module) -> str:
    """What the exported graph depends on: the decoder's class, every tensor, torch."""
    h = hashlib.sha256(f"{type(decoder).__name__}|{torch.__version__}|{EXPORT_VERSION}".encode())
    for name, tensor in decoder.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _export(decoder: nn.Module) -> bytes:
    buf = io.BytesIO()
    frames = {0: "batch", 1: "frames"}
    # constant example inputs: tracing needs shapes only, and must not advance the global RNG
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(decoder, "gru"):
            example = (torch.full((1, 8, 2), 0.5), torch.zeros(1, 1, decoder.gru.hidden_size))
            torch.onnx.export(decoder, example, buf, dynamo=False, opset_version=18,
                              input_names=["x", "state"], output_names=["raw", "next_state"],
                              dynamic_axes={"x": frames, "state": {1: "batch"},
                                            "raw": frames, "next_state": {1: "batch"}})
        else:
            # the wrapper in eval mode: the exporter restores the exported module's mode
            # recursively afterwards, which would leave a training-mode wrapper's decoder
            # training
            torch.onnx.export(RawDecoder(decoder).eval(), (torch.full((1, 64, 2), 0.5),), buf,
                              dynamo=False, opset_version=18, input_names=["x"],
                              output_names=["raw"], dynamic_axes={"x": frames, "raw": frames})
    return buf.getvalue()


def runtime_decoder(decoder: nn.Module, cache_dir: Path | None = None) -> OnnxDecoder:
    """A float decoder as an ONNX Runtime decoder: a GRUDecoder with state in and out, a CNN
    decoder as scaled inputs -> raw controls. ``decoder`` stays in eval mode. With
    ``cache_dir`` the exported graph is kept there under a digest of the decoder's weights, so
    a new process skips the export (most of a short command's start)."""
    decoder.eval()
    n_params = sum(p.numel() for p in decoder.parameters())
    path = None if cache_dir is None else Path(cache_dir) / f"{_export_key(decoder)}.onnx"
    if path is not None and path.is_file():
        try:
            runtime = OnnxDecoder(path.read_bytes(), decoder.receptive_field, n_params)
            os.utime(path)  # recently used: the cache trims it last
            return runtime
        except Exception:  # a damaged entry: export again
            path.unlink(missing_ok=True)
    graph = _export(decoder)
    if path is not None:
        with contextlib.suppress(OSError):  # a read-only cache is not an error
            with atomic_path(path) as tmp:
                tmp.write_bytes(graph)
            trim_cache(path.parent.parent)  # the cache's root (``cache.decoder_cache_dir``)
    return OnnxDecoder(graph, decoder.receptive_field, n_params)
