"""The whole chain (decoder + harmonic + filtered noise + reverb) as one ONNX graph, stateful
and streamable, for C++ / JavaScript hosts (ONNX Runtime, onnxruntime-web).

One call of the graph renders the next F frames of pitch and loudness (F free: a block of a
stream, or a whole file at once) into ``F * hop`` samples, and takes and returns every piece
of state explicitly: the decoder's causal conv caches or GRU state, the previous frame's f0 and
harmonic amplitudes, the oscillator phase, the noise overlap-add tail, the reverb's partition
history. Call i renders frame segments ``[start - 1, start + F - 1)``: each segment needs the
frame after it, so the output runs one hop behind the input, exactly as the streaming
engine's ``synthesize``; DDSP-CNN, which looks 27 frames ahead, runs that much further behind
(its convs stream causally with delay lines for their residuals, f0 and loudness, and zero
their pre-roll). ``ChainStep`` is the PyTorch module the graph is exported from, and the tests
hold it equal to ``Stream.synthesize`` and the graph equal to it. The GRU runs as a scan over
frames (ONNX ``Scan``), so the number of frames stays free. Batch 1; at least 3 frames per
call.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn
from torch._higher_order_ops.scan import scan  # ONNX Scan: the GRU over any frame count

from ..atomic import atomic_path
from ..dsp.core import SILENCE_DB, decoder_inputs
from ..dsp.stream_synth import initial_synth_state, reverb_partitions, synth_step
from ..dsp.synth import gated_controls
from ..errors import UserError
from ..models.decoders import CNNDecoder, GRUDecoder
from ..models.model import Model
from ..models.streaming import fold_batchnorm


class ChainStep(nn.Module):
    def __init__(self, model: Model, seed: int = 0):
        super().__init__()
        cfg = model.config
        dec = model.decoder
        if model.is_quantized:
            raise UserError("the chain graph needs a float model (its decoder in PyTorch)")
        if cfg.n_noise_bands - 1 > cfg.hop_size:
            raise UserError("the chain graph needs hop_size >= n_noise_bands - 1")
        self.hop, self.sr, self.k = cfg.hop_size, float(cfg.sample_rate), cfg.n_harmonics
        self.delay = cfg.n_noise_bands - 1
        self.seed = seed
        self.gate = model.silence_gate_db
        self.max_harmonic_hz = float(cfg.max_harmonic_hz)
        self.register_buffer("noise_floor", model.synth.frozen_noise_floor())
        # convs: (weight, bias, dilation, residual, right padding, delay after this layer)
        self.convs: list[tuple[torch.Tensor, torch.Tensor, int, bool, int, int]] = []
        self.gru = dec if isinstance(dec, GRUDecoder) else None
        self.look = 0
        if isinstance(dec, CNNDecoder):
            with torch.no_grad():
                w, b = fold_batchnorm(dec.inp.weight, dec.inp_norm)
                layers = [(w, b, 1, False)]
                for block, d in zip(dec.blocks, dec.dilations, strict=True):
                    w, b = fold_batchnorm(block.conv.weight, block.norm)
                    layers.append((w, b, d, True))
            for w, b, d, residual in layers:
                right = dec._pad(d)[1]
                self.look += right
                self.convs.append((w, b, d, residual, right, self.look))
            self.proj = dec.proj
        weight = reverb_partitions(model.synth.reverb_ir, self.hop)
        self.register_buffer("reverb_weight", weight)
        self.n_parts = weight.shape[-1]

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """The state before the first call (silence everywhere)."""
        if self.gru is not None:
            dec = [torch.zeros(batch, self.gru.gru.hidden_size)]
        else:
            dec = [torch.zeros(batch, w.shape[1], (w.shape[-1] - 1) * d)
                   for w, _, d, _, _, _ in self.convs]
            dec += [torch.zeros(batch, w.shape[0], right)
                    for w, _, _, residual, right, _ in self.convs if residual and right]
            if self.look:  # f0 and loudness wait for the decoder's lookahead
                dec += [torch.zeros(batch, self.look), torch.full((batch, self.look), SILENCE_DB)]
        return dec + initial_synth_state(batch, self.k, self.hop, self.delay, self.n_parts)

    @property
    def n_decoder_states(self) -> int:
        if self.gru is not None:
            return 1
        delayed = sum(1 for c in self.convs if c[3] and c[4])
        return len(self.convs) + delayed + (2 if self.look else 0)

    def state_names(self) -> list[str]:
        n_dec = self.n_decoder_states
        return ([f"decoder_{i}" for i in range(n_dec)] +
                ["prev_f0", "prev_harmonics", "phase", "noise_tail", "reverb_history",
                 "reverb_previous"])

    def _decode(self, x: torch.Tensor, dec_state: list[torch.Tensor], start: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.gru is not None:  # the GRU as a scan over frames (ONNX Scan: any length)
            dec, gru = self.gru, self.gru.gru
            a, b = dec.f0_mlp(x[..., :1]), dec.loudness_mlp(x[..., 1:])
            gates_in = torch.cat([a, b], -1) @ gru.weight_ih_l0.T + gru.bias_ih_l0
            size = gru.hidden_size
            w_hh, b_hh = gru.weight_hh_l0.T, gru.bias_hh_l0   # tensors, not the module

            def step(h: torch.Tensor, gi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                gh = h @ w_hh + b_hh
                r = torch.sigmoid(gi[:, :size] + gh[:, :size])
                z = torch.sigmoid(gi[:, size: 2 * size] + gh[:, size: 2 * size])
                n = torch.tanh(gi[:, 2 * size:] + r * gh[:, 2 * size:])
                h = (1 - z) * n + z * h
                return h, h.clone()

            last, hs = scan(step, dec_state[0], gates_in.transpose(0, 1))
            h_seq = hs.transpose(0, 1)
            return dec.proj(dec.out_mlp(torch.cat([a, b, h_seq], -1))), [last]
        # Each conv runs causally on its cache + the new frames; a conv that looks `right`
        # frames ahead thereby outputs frame t when frame t + right arrives, so its residual
        # input waits `right` frames in a delay line, and outputs for frames before 0 (the
        # first calls' pre-roll) are zeroed: they stand for the offline zero padding.
        n_convs = len(self.convs)
        hists, delays = dec_state[:n_convs], dec_state[n_convs:]
        h, new_hists, new_delays = x.transpose(1, 2), [], []
        frames = torch.arange(x.shape[1]) + start
        used = 0
        for (w, b, d, residual, right, delay), hist in zip(self.convs, hists, strict=True):
            inp = nn.functional.relu6(h) if residual else h
            buf = torch.cat([hist, inp], 2)             # causal conv cache + the new frames
            y = nn.functional.conv1d(buf, w, b, dilation=d)
            new_hists.append(buf[:, :, buf.shape[2] - hist.shape[2]:])
            if residual and right:
                waiting = torch.cat([delays[used], h], 2)
                new_delays.append(waiting[:, :, waiting.shape[2] - right:])
                h = waiting[:, :, : h.shape[2]] + y
                used += 1
            else:
                h = h + y if residual else y
            if self.look:
                h = torch.where((frames >= delay).view(1, 1, -1), h, torch.zeros_like(h))
        return self.proj(h.transpose(1, 2)), new_hists + new_delays

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, start: torch.Tensor,
                *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``f0_hz``, ``loudness_db`` ``[B, F]``; ``start``: index of their first frame
        (int64 ``[1]``, for the noise stream); the state -> audio ``[B, F * hop]`` and the new
        state."""
        n_dec = self.n_decoder_states
        dec_state, rest = list(state[:n_dec]), state[n_dec:]
        prev_f0, prev_h, phase, noise_tail, rev_hist, rev_prev = rest
        n = f0_hz.shape[1]
        x = decoder_inputs(f0_hz, loudness_db, self.gate[1])  # floored, as Model.decode_step
        raw, new_dec = self._decode(x, dec_state[: n_dec - (2 if self.look else 0)], start)
        if self.look:  # the decoder's output is `look` frames behind: so are f0 and loudness
            f0_wait = torch.cat([dec_state[-2], f0_hz], 1)
            ld_wait = torch.cat([dec_state[-1], loudness_db], 1)
            f0_hz, loudness_db = f0_wait[:, :n], ld_wait[:, :n]
            new_dec = [*new_dec, f0_wait[:, n:], ld_wait[:, n:]]
            start = start - self.look
        harm, mags = gated_controls(raw, f0_hz, loudness_db, self.k, self.sr, self.gate[0],
                                    self.gate[1], self.max_harmonic_hz, self.noise_floor)
        out, *synth_state = synth_step(f0_hz, harm, mags, start, prev_f0, prev_h, phase,
                                       noise_tail, rev_hist, rev_prev, self.reverb_weight,
                                       self.hop, self.sr, self.seed, trim=False)
        return (out, *new_dec, *synth_state)


def export_chain(model: Model, path: str | Path, seed: int = 0) -> Path:
    """Write the chain graph of ``model`` to ``path`` as ONNX (atomically)."""
    step = ChainStep(model.eval(), seed)
    frames = 16
    gen = torch.Generator().manual_seed(0)
    f0 = 200 + 300 * torch.rand(1, frames, generator=gen)
    ld = -40 + 30 * torch.rand(1, frames, generator=gen)
    state = step.initial_state(1)
    names = ["f0_hz", "loudness_db", "start", *step.state_names()]
    outs = ["audio", *[f"next_{s}" for s in step.state_names()]]
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
