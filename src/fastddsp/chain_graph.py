"""The whole chain (decoder + harmonic + filtered noise + reverb) as one ONNX graph, stateful
and streamable, for C++ / JavaScript hosts (ONNX Runtime, onnxruntime-web).

One call of the graph renders the next F frames of pitch and loudness (F free: a block of a
stream, or a whole file at once) into ``F * hop`` samples, and takes and returns every piece
of state explicitly: causal conv caches of the decoder, the previous frame's f0 and
harmonic amplitudes, the oscillator phase, the noise overlap-add tail, the reverb's partition
history. Call i renders frame segments ``[start - 1, start + F - 1)``: each segment needs the
frame after it, so the output runs one hop behind the input, exactly as the streaming
engine's ``synthesize``. ``ChainStep`` is the PyTorch module the graph is exported from, and
the tests hold it equal to ``Stream.synthesize`` and the graph equal to it. Decoders with
lookahead (DDSP-CNN) and the GRU (DDSP-full, whose export pins the sequence length) are not
supported yet. Batch 1; at least 3 frames per call.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path
from .dsp.core import decoder_inputs, silence_gate
from .dsp.harmonic import harmonic_amplitudes, harmonic_synth
from .dsp.noise import hashed_noise, noise_magnitudes, noise_segments, overlap_add
from .dsp.reverb import wet_impulse_response
from .dsp.synth import split_raw
from .errors import UserError
from .models.decoders import CNNDecoder
from .models.model import Model
from .models.streaming import fold_batchnorm


class ChainStep(nn.Module):
    def __init__(self, model: Model, seed: int = 0):
        super().__init__()
        cfg = model.config
        dec = model.decoder
        if model.is_quantized:
            raise UserError("the chain graph needs a float model (its decoder in PyTorch)")
        if not (isinstance(dec, CNNDecoder) and dec.causal):
            raise UserError("the chain graph supports the causal CNN decoder (tiny) only: "
                            "DDSP-CNN looks 27 frames ahead, and the GRU of DDSP-full does not "
                            "export with a free number of frames yet")
        if cfg.n_noise_bands - 1 > cfg.hop_size:
            raise UserError("the chain graph needs hop_size >= n_noise_bands - 1")
        self.hop, self.sr, self.k = cfg.hop_size, float(cfg.sample_rate), cfg.n_harmonics
        self.delay = cfg.n_noise_bands - 1
        self.tail = cfg.hop_size + 2 * self.delay - 1 - self.delay   # noise carried over
        self.seed = seed
        self.gate = model.silence_gate_db
        self.convs: list[tuple[torch.Tensor, torch.Tensor, int, bool]] = []
        with torch.no_grad():
            w, b = fold_batchnorm(dec.inp.weight, dec.inp_norm)
            self.convs.append((w, b, 1, False))
            for block, d in zip(dec.blocks, dec.dilations, strict=True):
                w, b = fold_batchnorm(block.conv.weight, block.norm)
                self.convs.append((w, b, d, True))
        self.proj = dec.proj
        ir = model.synth.reverb_ir
        wet = wet_impulse_response(ir.detach() if ir is not None else torch.zeros(1))
        p = self.hop
        self.n_parts = max(1, -(-wet.shape[-1] // p))
        parts = nn.functional.pad(wet, (0, self.n_parts * p - wet.shape[-1])).view(-1, p)
        spec = torch.fft.rfft(parts, 2 * p).flip(0)                    # [K, P + 1], flipped
        self.register_buffer("ir_re", spec.real.T.unsqueeze(1).contiguous())  # [P + 1, 1, K]
        self.register_buffer("ir_im", spec.imag.T.unsqueeze(1).contiguous())

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """The state before the first call (silence everywhere)."""
        p, k = self.hop, self.k
        dec = [torch.zeros(batch, w.shape[1], (w.shape[-1] - 1) * d)
               for w, _, d, _ in self.convs]
        return dec + [torch.full((batch, 1), -1.0), torch.zeros(batch, 1, k),
                      torch.zeros(batch, dtype=torch.float64), torch.zeros(batch, self.tail),
                      torch.zeros(batch, self.n_parts - 1, p + 1, 2), torch.zeros(batch, p)]

    def state_names(self) -> list[str]:
        n_dec = len(self.convs)
        return ([f"decoder_{i}" for i in range(n_dec)] +
                ["prev_f0", "prev_harmonics", "phase", "noise_tail", "reverb_history",
                 "reverb_previous"])

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, start: torch.Tensor,
                *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``f0_hz``, ``loudness_db`` ``[B, F]``; ``start``: index of their first frame
        (int64 ``[1]``, for the noise stream); the state -> audio ``[B, F * hop]`` and the new
        state."""
        n_dec = len(self.convs)
        dec_state, rest = list(state[:n_dec]), state[n_dec:]
        prev_f0, prev_h, phase, noise_tail, rev_hist, rev_prev = rest
        batch, n = f0_hz.shape
        hop, p = self.hop, self.hop
        x = decoder_inputs(f0_hz, loudness_db)
        h, new_dec = x.transpose(1, 2), []
        for (w, b, d, residual), hist in zip(self.convs, dec_state, strict=True):
            inp = nn.functional.relu6(h) if residual else h
            buf = torch.cat([hist, inp], 2)             # causal conv cache + the new frames
            y = nn.functional.conv1d(buf, w, b, dilation=d)
            new_dec.append(buf[:, :, buf.shape[2] - hist.shape[2]:])
            h = h + y if residual else y
        raw = self.proj(h.transpose(1, 2))
        amp, dist, noise_raw = split_raw(raw, self.k)
        gate = silence_gate(loudness_db, self.gate[0], self.gate[1]).unsqueeze(-1)
        harm = harmonic_amplitudes(amp, dist, f0_hz, self.sr) * gate
        mags = noise_magnitudes(noise_raw) * gate
        # noise: the carried tail plus the new frames' overlap-add, from segment start - 1
        index = torch.arange(n * hop, dtype=torch.int64) + start * hop
        ola = overlap_add(noise_segments(mags, hashed_noise(index, self.seed, batch), hop), hop)
        ola = nn.functional.pad(ola, [hop - self.delay, 0])
        acc = nn.functional.pad(noise_tail, [0, ola.shape[1] - noise_tail.shape[1]]) + ola
        noise = acc[:, : n * hop]
        new_tail = acc[:, n * hop: n * hop + self.tail]
        # first call (prev_f0 = -1): the segment before frame 0 is silence, and the phase is 0
        # at frame 0, as in the streaming engine
        first = prev_f0 < 0
        prev_f0 = torch.where(first, f0_hz[:, :1], prev_f0)
        omega = prev_f0[:, 0].to(torch.float64) * (2.0 * math.pi / self.sr)
        phase = torch.where(first[:, 0], -omega * hop, phase)
        # harmonic segments [start - 1, start + F - 1): previous frame, then all but the last
        left_f0 = torch.cat([prev_f0, f0_hz[:, :-1]], 1)
        left_h = torch.cat([prev_h, harm[:, :-1]], 1)
        audio, new_phase = harmonic_synth(left_f0, left_h, hop, self.sr, phase, f0_hz[:, -1:],
                                          harm[:, -1:], trim=False)
        dry = audio + noise
        silent = first & (torch.arange(n * hop) < hop).unsqueeze(0)
        dry = torch.where(silent, torch.zeros_like(dry), dry)
        # reverb: uniformly partitioned overlap-save, complex products in real arithmetic
        blocks = dry.reshape(batch, n, p)
        joined = torch.cat([rev_prev.unsqueeze(1), blocks], 1)
        pairs = torch.cat([joined[:, :-1], joined[:, 1:]], 2)
        spec = torch.fft.rfft(pairs, 2 * p)
        hist = torch.cat([rev_hist, torch.stack([spec.real, spec.imag], -1)], 1)
        # Y[i] = sum_j X[i + j] H[K - 1 - j]: a depthwise conv along the partition axis
        h_re = hist[..., 0].transpose(1, 2)                    # [B, P + 1, K - 1 + F]
        h_im = hist[..., 1].transpose(1, 2)
        bins = p + 1
        re = (nn.functional.conv1d(h_re, self.ir_re, groups=bins)
              - nn.functional.conv1d(h_im, self.ir_im, groups=bins)).transpose(1, 2)
        im = (nn.functional.conv1d(h_re, self.ir_im, groups=bins)
              + nn.functional.conv1d(h_im, self.ir_re, groups=bins)).transpose(1, 2)
        wet = torch.fft.irfft(torch.complex(re, im), 2 * p)[..., p:]
        out = dry + wet.reshape(batch, n * p)
        new_hist = hist[:, n:]
        return (out, *new_dec, f0_hz[:, -1:], harm[:, -1:], new_phase, new_tail, new_hist,
                blocks[:, -1])


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
