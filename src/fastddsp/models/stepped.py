"""Decoders stepped with explicit state: the one stepped form of each decoder, which the stream,
the chunked (offline) renderer and the chain graph all run.

A stepper's ``step(x, start, state, flush)`` takes the next scaled input frames ``x``
``[B, n, 2]`` (frames ``[start, start + n)``; ``start`` an int64 ``[1]``) and its state (a list
of tensors, ``initial_state(batch)`` at first) and returns the raw controls of frames
``[start - look, start + n - look)`` and the new state, where ``look`` is the decoder's
lookahead: an output frame comes out once every input it depends on has arrived, and outputs
for frames before 0 (the first calls' pre-roll) are zeros. ``flush=True`` ends the sequence:
the stepper then also returns its last ``look`` frames as the offline decoder computes them at
the end (with its zero padding). Over any split into steps the outputs equal the offline
decoder's on the whole sequence (tested).

- ``CNNStepper``: BatchNorm folded into the convs; each conv keeps the last
  ``(kernel - 1) * dilation`` inputs (its causal cache). A conv that looks ``right`` frames
  ahead outputs frame t when frame t + right arrives, so its residual input waits ``right``
  frames in a delay line. TorchScript-able and exportable to ONNX.
- ``GRUStepper``: the GRU state, PyTorch's GRU kernel (Python and TorchScript);
  ``ScanGRUStepper``, for ONNX export, the same cell as a scan over frames (ONNX ``Scan``).
- ``RuntimeStepper``: a decoder in another runtime (ONNX Runtime: the int8 models, and float
  models whose ``runtime`` is ``"onnxruntime"``), stepped by carrying its recurrent state or by
  re-running it over its receptive field. Python only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch._higher_order_ops.scan import scan  # ONNX Scan: the GRU over any frame count

from .decoders import CNNDecoder, GRUDecoder


def fold_batchnorm(weight: torch.Tensor, norm: nn.BatchNorm1d
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A conv weight (no bias) followed by inference BatchNorm -> one conv's weight and bias."""
    assert norm.running_var is not None and norm.running_mean is not None
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return weight * scale.view(-1, 1, 1), norm.bias - norm.running_mean * scale


FEW_FRAMES = 64  # up to this many output frames, a dilated conv runs as ``dilated_conv``


def tap_weight(weight: torch.Tensor) -> torch.Tensor:
    """A conv weight ``[out, in, k]`` -> ``[out, k * in]``, the taps side by side (for
    ``dilated_conv``)."""
    return weight.permute(0, 2, 1).reshape(weight.shape[0], -1).contiguous()


def dilated_conv(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor, kernel: int,
                 dilation: int) -> torch.Tensor:
    """``conv1d(x, weight, bias, dilation=dilation)`` (no padding) with ``taps =
    tap_weight(weight)``: the kernel's shifted inputs stacked, one matrix product. The same
    sums without PyTorch's dilated-conv path, which dominated a stream's steps of a frame or
    two (violin-cnn's 128 channels, one frame: 147 us a conv against 21 us, measured one
    thread); for many frames and for undilated convs ``conv1d`` is as fast or faster."""
    n = x.shape[2] - (kernel - 1) * dilation
    shifted = torch.cat([x[:, :, j * dilation: j * dilation + n] for j in range(kernel)], 1)
    return torch.matmul(taps, shifted) + bias.view(1, -1, 1)


class _Conv(nn.Module):
    """One conv of the CNN, stepped: ``x + conv(relu6(x))`` (residual) or ``conv(x)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, dilation: int, right: int,
                 delay: int, residual: bool, few_frames: int = FEW_FRAMES):
        super().__init__()
        self.few_frames = few_frames  # 0: always conv1d (a graph's free frame count)
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())
        self.register_buffer("taps", tap_weight(weight.detach()))
        self.kernel = weight.shape[-1]
        self.dilation = dilation
        self.span = (weight.shape[-1] - 1) * dilation  # the causal cache's length
        self.right = right                                # frames this conv looks ahead
        self.delay = delay                                # total lookahead up to this conv
        self.residual = residual
        self.delayed = residual and right > 0             # has a residual delay line

    def step(self, h: torch.Tensor, cache: torch.Tensor, line: torch.Tensor, start: torch.Tensor,
             lookahead: int, flush: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input frames ``h`` ``[B, C, n]``, the cache and the residual delay line -> output
        frames and the new cache and line."""
        inp = nn.functional.relu6(h) if self.residual else h
        if flush and self.right:  # the end: the offline zero padding
            inp = nn.functional.pad(inp, [0, self.right])
        buf = torch.cat([cache, inp], 2)
        if self.few_frames > 0 and self.dilation > 1 and buf.shape[2] - self.span <= \
                self.few_frames:
            y = dilated_conv(buf, self.taps, self.bias, self.kernel, self.dilation)
        else:
            y = nn.functional.conv1d(buf, self.weight, self.bias, dilation=self.dilation)
        new_cache = buf[:, :, buf.shape[2] - self.span:]
        if self.delayed:
            waiting = torch.cat([line, h], 2)
            line = waiting[:, :, waiting.shape[2] - self.right:]
            h = waiting[:, :, : y.shape[2]] + y
        elif self.residual:
            h = h + y
        else:
            h = y
        if lookahead:  # frames before 0 stand for the offline zero padding
            frames = torch.arange(h.shape[2]) + start - self.delay
            h = torch.where((frames >= 0).view(1, 1, -1), h, torch.zeros_like(h))
        return h, new_cache, line


class CNNStepper(nn.Module):
    """``few_frames``: steps of up to this many frames run their dilated convs as
    ``dilated_conv`` (0 for an exported graph, whose frame count is free)."""

    def __init__(self, decoder: CNNDecoder, few_frames: int = FEW_FRAMES):
        super().__init__()
        layers = []
        delay = 0
        with torch.no_grad():
            for i, d in enumerate((1, *decoder.dilations)):
                conv, norm = ((decoder.inp, decoder.inp_norm) if i == 0 else
                              (decoder.blocks[i - 1].conv, decoder.blocks[i - 1].norm))
                w, b = fold_batchnorm(conv.weight, norm)
                right = decoder._pad(d)[1]
                delay += right
                layers.append(_Conv(w, b, d, right, delay, residual=i > 0,
                                    few_frames=few_frames))
        self.convs = nn.ModuleList(layers)
        self.proj = decoder.proj
        self.lookahead = delay

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """Each conv's cache, then the delay lines of the residual convs that look ahead."""
        caches: list[torch.Tensor] = []
        lines: list[torch.Tensor] = []
        for conv in self.convs:
            caches.append(torch.zeros(batch, conv.weight.shape[1], conv.span))
            if conv.delayed:
                lines.append(torch.zeros(batch, conv.weight.shape[0], conv.right))
        return caches + lines

    def step(self, x: torch.Tensor, start: torch.Tensor, state: list[torch.Tensor],
             flush: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        n_convs = len(self.convs)
        h = x.transpose(1, 2)
        caches: list[torch.Tensor] = []
        lines: list[torch.Tensor] = []
        used = n_convs
        for i, conv in enumerate(self.convs):
            line = state[used] if conv.delayed else state[i]  # state[i]: a placeholder
            h, cache, line = conv.step(h, state[i], line, start, self.lookahead, flush)
            caches.append(cache)
            if conv.delayed:
                lines.append(line)
                used += 1
        return self.proj(h.transpose(1, 2)), caches + lines


class GRUStepper(nn.Module):
    def __init__(self, decoder: GRUDecoder):
        super().__init__()
        self.decoder = decoder
        self.hidden = decoder.gru.hidden_size
        self.lookahead = 0

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        return [torch.zeros(batch, self.hidden)]

    def step(self, x: torch.Tensor, start: torch.Tensor, state: list[torch.Tensor],
             flush: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out, h = self.decoder(x, state[0].unsqueeze(0))
        return out, [h[0]]


class ScanGRUStepper(GRUStepper):
    """``GRUStepper`` for ONNX export: the GRU written as its cell scanned over frames (ONNX
    ``Scan``, so the number of frames stays free). Not for TorchScript."""

    def step(self, x: torch.Tensor, start: torch.Tensor, state: list[torch.Tensor],
             flush: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        dec, gru = self.decoder, self.decoder.gru
        a, b = dec.f0_mlp(x[..., :1]), dec.loudness_mlp(x[..., 1:])
        gates_in = torch.cat([a, b], -1) @ gru.weight_ih_l0.T + gru.bias_ih_l0
        size = self.hidden
        w_hh, b_hh = gru.weight_hh_l0.T, gru.bias_hh_l0   # tensors, not the module

        def cell(h: torch.Tensor, gi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            gh = h @ w_hh + b_hh
            r = torch.sigmoid(gi[:, :size] + gh[:, :size])
            z = torch.sigmoid(gi[:, size: 2 * size] + gh[:, size: 2 * size])
            n = torch.tanh(gi[:, 2 * size:] + r * gh[:, 2 * size:])
            h = (1 - z) * n + z * h
            return h, h.clone()

        last, hs = scan(cell, state[0], gates_in.transpose(0, 1))
        return dec.proj(dec.out_mlp(torch.cat([a, b, hs.transpose(0, 1)], -1))), [last]


class RuntimeStepper(nn.Module):
    """``decode(x, state) -> (raw, state)``, a decoder in another runtime with receptive field
    ``(past, look)`` (past -1: recurrent, state ``[1, B, hidden]``), stepped."""

    def __init__(self, decode: Callable[..., Any], receptive_field: tuple[int, int],
                 hidden: int = 0):
        super().__init__()
        self.decode = decode
        self.past, self.lookahead = int(receptive_field[0]), int(receptive_field[1])
        self.hidden = hidden

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        if self.past < 0:
            return [torch.zeros(1, batch, self.hidden)]
        return [torch.zeros(batch, self.past + self.lookahead, 2)]  # the last inputs

    def step(self, x: torch.Tensor, start: torch.Tensor, state: list[torch.Tensor],
             flush: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.past < 0:
            out, h = self.decode(x, state[0])
            return out, [h]
        s, n, width = int(start[0]), x.shape[1], state[0].shape[1]
        window = torch.cat([state[0], x], 1)              # frames [s - width, s + n)
        lo = max(0, s - width)                            # frames before 0 do not exist
        raw = self.decode(window[:, lo - (s - width):])[0]  # frames [lo, s + n)
        first, end = s - self.lookahead, s + n - (0 if flush else self.lookahead)
        out = raw[:, max(first, 0) - lo: max(end, 0) - lo]
        if first < 0:  # the pre-roll
            out = torch.cat([raw.new_zeros(raw.shape[0], min(-first, end - first),
                                           raw.shape[2]), out], 1)
        return out, [window[:, window.shape[1] - width:]]

    def step_needed(self, x: torch.Tensor, start: torch.Tensor, state: list[torch.Tensor],
                    need: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``step`` (no flush, finite receptive field) computing only the output frames where
        ``need`` ``[B, n]`` is true: their raw controls ``[M, C]`` in row-major order, and the
        new state (the same as ``step``'s). A frame's output depends only on the inputs in its
        receptive field, so each run of needed frames is decoded over itself and that context
        (runs closer than a receptive field are decoded as one): the same numbers as ``step``,
        at a cost that follows the needed frames. Where that costs more (a stream's calls of a
        few frames: a call per voice), the voices that need any frame are decoded in one call,
        as ``step``; calls are counted as ``CALL_FRAMES`` frames."""
        s, width, n = int(start[0]), state[0].shape[1], x.shape[1]
        window = torch.cat([state[0], x], 1)              # frames [s - width, s + n)
        new_state = [window[:, window.shape[1] - width:]]
        runs = needed_runs(need, width)
        if not runs:
            return x.new_zeros(0, 0), new_state
        rows = sorted({row for row, _, _ in runs})
        if len(rows) * (n + width) + CALL_FRAMES <= sum(
                j1 - j0 + width + CALL_FRAMES for _, j0, j1 in runs):
            # short calls (a stream's few frames), or notes everywhere: the needed voices
            # in one call, as ``step``
            index = torch.tensor(rows, dtype=torch.int64)
            out, _ = self.step(x[index], start, [state[0][index]])
            return out[need[index]], new_state
        base, first = s - width, s - self.lookahead       # need[:, j] is frame first + j
        pieces = []
        for row, j0, j1 in runs:
            t0, t1 = first + j0, first + j1              # output frames [t0, t1)
            lo = max(0, t0 - self.past)
            raw = self.decode(window[row: row + 1, lo - base: t1 + self.lookahead - base])[0][0]
            frames = raw[max(t0, 0) - lo: t1 - lo]
            if t0 < 0:  # the pre-roll's zeros, as ``step``
                frames = torch.cat([frames.new_zeros(min(-t0, j1 - j0), frames.shape[1]),
                                    frames])
            pieces.append(frames[need[row, j0:j1]])
        return torch.cat(pieces), new_state


# a decoder call's overhead, counted in frames decoded (``step_needed``); measured in ONNX
# Runtime, one thread: violin-tiny ~180 frames (27 us a call, 0.15 us a frame), violin-cnn ~20
CALL_FRAMES = 128


def needed_runs(need: torch.Tensor, gap: int) -> list[tuple[int, int, int]]:
    """``(row, start, end)`` for the runs of true values in each row of ``need`` ``[B, n]``,
    runs fewer than ``gap`` apart joined into one."""
    flags = need.numpy().astype(np.int8)
    edges = np.diff(np.pad(flags, ((0, 0), (1, 1))), axis=1)
    runs = []
    for row in range(flags.shape[0]):
        starts, ends = np.flatnonzero(edges[row] == 1), np.flatnonzero(edges[row] == -1)
        if starts.size == 0:
            continue
        keep = np.concatenate([[True], starts[1:] - ends[:-1] >= gap])
        for a, b in zip(starts[keep], np.append(ends[np.flatnonzero(keep)[1:] - 1], ends[-1]),
                        strict=True):
            runs.append((row, int(a), int(b)))
    return runs


def stepper(decoder: nn.Module, runtime: Callable[..., Any] | None = None) -> nn.Module:
    """The stepped form of ``decoder``: in PyTorch, or through ``runtime`` (a callable with the
    decoder's signature in another runtime) when given or when the decoder is not a PyTorch
    one (an int8 ONNX decoder)."""
    if runtime is None and isinstance(decoder, CNNDecoder):
        return CNNStepper(decoder)
    if runtime is None and isinstance(decoder, GRUDecoder):
        return GRUStepper(decoder)
    hidden = decoder.gru.hidden_size if isinstance(decoder, GRUDecoder) else 0
    return RuntimeStepper(runtime or decoder, decoder.receptive_field, hidden)
