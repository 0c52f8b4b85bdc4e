"""Decoders that take frames a few at a time and carry their context between calls.

``step(x)`` takes the next scaled input frames ``[B, n, 2]`` and returns the raw controls of
every frame whose inputs have all arrived, ``[B, m, n_out]``, in order. Over any split of a
sequence into steps, the concatenated outputs equal the offline decoder's on the whole
sequence, except that a decoder with lookahead holds its last ``lookahead`` frames back.

- ``StreamingCNN``: each conv keeps the last ``(kernel - 1) * dilation`` inputs (its causal
  cache) and the residual inputs still waiting for their conv output; BatchNorm is folded into
  the conv weights. A non-causal CNN streams with its declared lookahead.
- ``StreamingGRU``: carries the GRU state.
- ``WindowedDecoder``: any decoder (the int8 ONNX Runtime ones), re-run over its receptive
  field each step. Not TorchScript-able; the others are.
"""

from __future__ import annotations

import torch
from torch import nn

from ..dsp.core import decoder_inputs
from .decoders import CNNDecoder, GRUDecoder


def fold_batchnorm(weight: torch.Tensor, norm: nn.BatchNorm1d
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    assert norm.running_var is not None and norm.running_mean is not None
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return weight * scale.view(-1, 1, 1), norm.bias - norm.running_mean * scale


class _StreamConv(nn.Module):
    """One conv of the CNN, streaming: ``x + conv(relu6(x))`` (residual) or ``conv(x)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, dilation: int,
                 pad: tuple[int, int], residual: bool):
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())
        self.dilation = dilation
        self.left = pad[0]
        self.span = (weight.shape[-1] - 1) * dilation
        self.residual = residual
        c_in = weight.shape[1]
        self.hist = torch.zeros(1, c_in, self.left)      # conv inputs not yet fully used
        self.pending = torch.zeros(1, c_in, 0)           # residual inputs awaiting their output

    @torch.jit.export
    def reset(self, batch: int) -> None:
        c_in = self.weight.shape[1]
        self.hist = torch.zeros(batch, c_in, self.left)
        self.pending = torch.zeros(batch, c_in, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = nn.functional.relu6(x) if self.residual else x
        buf = torch.cat([self.hist, inp], 2)
        n_out = buf.shape[2] - self.span
        if n_out <= 0:
            self.hist = buf
            if self.residual:
                self.pending = torch.cat([self.pending, x], 2)
            return torch.zeros(x.shape[0], self.weight.shape[0], 0, dtype=x.dtype)
        y = nn.functional.conv1d(buf, self.weight, self.bias, dilation=self.dilation)
        self.hist = buf[:, :, n_out:]
        if self.residual:
            waiting = torch.cat([self.pending, x], 2)
            y = waiting[:, :, :n_out] + y
            self.pending = waiting[:, :, n_out:]
        return y


class StreamingCNN(nn.Module):
    def __init__(self, decoder: CNNDecoder):
        super().__init__()
        decoder = decoder.eval()
        convs = []
        with torch.no_grad():
            w, b = fold_batchnorm(decoder.inp.weight, decoder.inp_norm)
            convs.append(_StreamConv(w, b, 1, decoder._pad(1), residual=False))
            for block, d in zip(decoder.blocks, decoder.dilations, strict=True):
                w, b = fold_batchnorm(block.conv.weight, block.norm)
                convs.append(_StreamConv(w, b, d, decoder._pad(d), residual=True))
        self.convs = nn.ModuleList(convs)
        self.proj = decoder.proj
        self.lookahead = decoder.receptive_field[1]
        self.batch = 1

    @torch.jit.export
    def reset(self, batch: int = 1) -> None:
        self.batch = batch
        for conv in self.convs:
            conv.reset(batch)

    @torch.jit.export
    def step(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.batch:
            self.reset(x.shape[0])
        h = x.transpose(1, 2)
        for conv in self.convs:
            h = conv(h)
        return self.proj(h.transpose(1, 2))


class StreamingGRU(nn.Module):
    def __init__(self, decoder: GRUDecoder):
        super().__init__()
        self.decoder = decoder.eval()
        self.lookahead = 0
        self.state = torch.zeros(1, 1, decoder.gru.hidden_size)

    @torch.jit.export
    def reset(self, batch: int = 1) -> None:
        self.state = torch.zeros(1, batch, self.decoder.gru.hidden_size)

    @torch.jit.export
    def step(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.state.shape[1]:
            self.reset(x.shape[0])
        out, self.state = self.decoder(x, self.state)
        return out


class WindowedDecoder(nn.Module):
    """Any CNN-like decoder with a finite receptive field, re-run on the frames it needs."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder
        self.past, self.lookahead = decoder.receptive_field
        self.reset()

    def reset(self, batch: int = 1) -> None:
        self.frames = torch.zeros(batch, 0, 2)
        self.first = 0       # absolute index of self.frames[:, 0]
        self.done = 0        # frames output so far

    def step(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.frames.shape[0]:
            self.reset(x.shape[0])
        self.frames = torch.cat([self.frames, x], 1)
        total = self.first + self.frames.shape[1]
        ready = total - self.lookahead        # frames [done, ready) have all their inputs
        if ready <= self.done:
            return torch.zeros(x.shape[0], 0, 0)
        lo = max(0, self.done - self.past)
        window = self.frames[:, lo - self.first:]
        out = self.decoder(window)[0][:, self.done - lo: ready - lo]
        self.done = ready
        keep = max(0, self.done - self.past)
        self.frames = self.frames[:, keep - self.first:]
        self.first = keep
        return out


def streaming_decoder(decoder: nn.Module) -> nn.Module:
    """The streaming form of a model's decoder."""
    if isinstance(decoder, CNNDecoder):
        return StreamingCNN(decoder)
    if isinstance(decoder, GRUDecoder):
        return StreamingGRU(decoder)
    return WindowedDecoder(decoder)


__all__ = ["StreamingCNN", "StreamingGRU", "WindowedDecoder", "decoder_inputs",
           "streaming_decoder"]
