"""The whole chain (decoder + harmonic + filtered noise + reverb) as one ONNX graph, stateful
and streamable, for C++ / JavaScript hosts (ONNX Runtime, onnxruntime-web).

The graph is ``models.chain.ChainStep`` (the stepped chain the stream and offline rendering
run) exported. One call renders the next F frames of pitch and loudness (F free: a block of a
stream, or a whole file at once) into ``F * hop`` samples, and takes and returns every piece
of state explicitly: the decoder's causal conv caches or GRU state, the previous frame's f0 and
harmonic amplitudes, the oscillator phase, the noise overlap-add tail, the reverb's partition
history. Call i renders frame segments ``[start - 1, start + F - 1)``: each segment needs the
frame after it, so the output runs one hop behind the input, exactly as the streaming
engine's ``synthesize``; DDSP-CNN, which looks 27 frames ahead, runs that much further behind.
The GRU runs as a scan over frames (ONNX ``Scan``), so the number of frames stays free. Batch
1; at least 3 frames per call. The tests hold the graph equal to ``ChainStep``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import UserError
from ..models.chain import ChainStep
from ..models.decoders import GRUDecoder
from ..models.model import Model
from ..models.stepped import CNNStepper, ScanGRUStepper


class GraphStep(nn.Module):
    """``ChainStep`` with its state as separate inputs and outputs (what a graph has)."""

    def __init__(self, model: Model, seed: int = 0):
        super().__init__()
        if model.is_quantized:
            raise UserError("the chain graph needs a float model (its decoder in PyTorch)")
        gru = isinstance(model.decoder, GRUDecoder)
        decoder = (ScanGRUStepper(model.decoder) if gru else
                   CNNStepper(model.decoder, few_frames=0))  # no branch on the frame count
        self.chain = ChainStep(model, seed, decoder=decoder, graph=True)

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, start: torch.Tensor,
                *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, new_state = self.chain.step(f0_hz, loudness_db, start, list(state))
        return (out, *new_state)


def export_chain(model: Model, path: str | Path, seed: int = 0) -> Path:
    """Write the chain graph of ``model`` to ``path`` as ONNX (atomically)."""
    step = GraphStep(model.eval(), seed)
    frames = 16
    gen = torch.Generator().manual_seed(0)
    f0 = 200 + 300 * torch.rand(1, frames, generator=gen)
    ld = -40 + 30 * torch.rand(1, frames, generator=gen)
    state = step.chain.initial_state(1)
    names = ["f0_hz", "loudness_db", "start", *step.chain.state_names()]
    outs = ["audio", *[f"next_{s}" for s in step.chain.state_names()]]
    path = Path(path)
    frames_dim = torch.export.Dim("frames", min=3, max=1 << 20)
    shapes = {"f0_hz": {1: frames_dim}, "loudness_db": {1: frames_dim}, "start": None,
              "state": tuple(None for _ in state)}
    with atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings(), \
            torch.no_grad():
        warnings.simplefilter("ignore")
        args = (f0, ld, torch.zeros(1, dtype=torch.int64), *state)
        program = torch.export.export(step, args, dynamic_shapes=shapes)
        torch.onnx.export(program, args, str(tmp), dynamo=True, input_names=names,
                          output_names=outs, optimize=True)
    return path
