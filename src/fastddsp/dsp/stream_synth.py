"""Synthesis one block at a time, as a pure function of controls and explicit state.

``synth_step`` renders the frame segments ``[start - 1, start + n - 1)`` from the next n
frames of controls: each segment interpolates from its frame to the next, so the output runs
one frame behind its input, and segments before frame 0 are silent (the phase is 0 where frame
0 begins, as in one-pass rendering). The state it takes and returns:

- ``prev_f0`` ``[B, 1]``, ``prev_harmonics`` ``[B, 1, K]``: the frame before this block;
- ``phase`` ``[B]`` (float64): the oscillator phase where this block's first segment begins;
- ``noise_tail`` ``[B, hop + delay - 1]``: filtered noise of earlier frames that overlaps
  this block (the FIR's overlap-add);
- ``reverb_history`` ``[B, K - 1, P + 1, 2]`` and ``reverb_previous`` ``[B, P]``: the
  uniformly partitioned overlap-save reverb in partitions of P samples (spectra as real and
  imaginary parts, so the same code exports to ONNX; ``reverb_partitions`` makes the IR's
  weights). A stream uses P = hop (blocks of any number of frames); offline rendering uses long
  partitions (each call a multiple of P samples), where the reverb costs a few FFTs a block.

``models.chain.ChainStep`` puts the decoder in front of it: the stream, the chunked renderer
and the chain graph run that. Over any split into blocks the output equals ``render`` of the
whole sequence delayed by one frame (tested through all three).
"""

from __future__ import annotations

import math

import torch

from .harmonic import harmonic_synth
from .noise import hashed_noise, noise_segments, overlap_add, sounding_noise_segments
from .reverb import wet_impulse_response


def reverb_partitions(ir: torch.Tensor | None, partition: int) -> torch.Tensor:
    """A reverb IR -> the spectra of its wet part in partitions of ``partition`` samples, as
    real 2x2 blocks per bin that map (re, im) of an input spectrum to (re, im) of the output:
    ``[partition + 1, 2, 2, K]`` (bin, out, in, partition), partitions in reverse order."""
    wet = wet_impulse_response(ir.detach().reshape(-1) if ir is not None else torch.zeros(1))
    n_parts = max(1, -(-wet.shape[-1] // partition))
    parts = torch.nn.functional.pad(wet, (0, n_parts * partition - wet.shape[-1]))
    spec = torch.fft.rfft(parts.view(n_parts, partition), 2 * partition).flip(0).T  # [bins, K]
    re, im = spec.real, spec.imag
    return torch.stack([torch.stack([re, -im], 1), torch.stack([im, re], 1)], 1).contiguous()


def complex_partitions(weight: torch.Tensor) -> torch.Tensor:
    """``reverb_partitions``' weights as the complex spectra they hold, stored as (re, im)
    pairs ``[bins, K, 2]`` (a real tensor that ``torch.view_as_complex`` reads in place)."""
    return torch.stack([weight[:, 0, 0], weight[:, 1, 0]], -1).contiguous()


def initial_synth_state(batch: int, n_harmonics: int, hop: int, noise_delay: int,
                        n_parts: int, partition: int = 0) -> list[torch.Tensor]:
    """Silence: ``[prev_f0, prev_harmonics, phase, noise_tail, reverb_history,
    reverb_previous]``, for reverb partitions of ``partition`` samples (default: ``hop``)."""
    if partition <= 0:  # (not `partition or hop`: TorchScript makes that a bool)
        partition = hop
    return [torch.zeros(batch, 1), torch.zeros(batch, 1, n_harmonics),
            torch.zeros(batch, dtype=torch.float64), torch.zeros(batch, hop + noise_delay - 1),
            torch.zeros(batch, n_parts - 1, partition + 1, 2), torch.zeros(batch, partition)]


def synth_step(f0_hz: torch.Tensor, harmonics: torch.Tensor, noise_mags: torch.Tensor,
               start: torch.Tensor, prev_f0: torch.Tensor, prev_harmonics: torch.Tensor,
               phase: torch.Tensor, noise_tail: torch.Tensor, reverb_history: torch.Tensor,
               reverb_previous: torch.Tensor, reverb_weight: torch.Tensor, hop: int,
               sample_rate: float, seed: int, graph: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                          torch.Tensor, torch.Tensor]:
    """The next n frames of controls (``f0_hz`` ``[B, n]``, ``harmonics`` ``[B, n, K]``,
    ``noise_mags`` ``[B, n, bands]``; ``start``: the index of their first frame, int64
    ``[1]``) and the state -> audio ``[B, n * hop]`` and the new state (see the module docs).
    ``n * hop`` is a multiple of the reverb's partition, except in a sequence's last call.
    ``graph=True``: the form that exports to ONNX (no data-dependent shapes, no complex
    tensors), slower in PyTorch."""
    dry, f0, h, new_phase, new_tail = dry_step(
        f0_hz, harmonics, noise_mags, start, prev_f0, prev_harmonics, phase, noise_tail, hop,
        sample_rate, seed, graph)
    out, hist, prev = reverb_step(dry, reverb_history, reverb_previous, reverb_weight, graph)
    return out, f0, h, new_phase, new_tail, hist, prev


def dry_step(f0_hz: torch.Tensor, harmonics: torch.Tensor, noise_mags: torch.Tensor,
             start: torch.Tensor, prev_f0: torch.Tensor, prev_harmonics: torch.Tensor,
             phase: torch.Tensor, noise_tail: torch.Tensor, hop: int, sample_rate: float,
             seed: int, graph: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``synth_step`` before the reverb: harmonic + filtered noise ``[B, n * hop]`` and the new
    ``prev_f0``, ``prev_harmonics``, ``phase``, ``noise_tail``. Voices that share a room sum
    their dry signals into one ``reverb_step``."""
    batch, n = f0_hz.shape[0], f0_hz.shape[1]
    delay = noise_mags.shape[-1] - 1          # the noise FIR's delay; needs hop >= delay
    tail = noise_tail.shape[1]
    # filtered noise: the carried tail plus the new frames' overlap-add, from segment start - 1
    index = torch.arange(n * hop, dtype=torch.int64) + start * hop
    if graph:
        segments = noise_segments(noise_mags, hashed_noise(index, seed, batch), hop)
    else:  # only the frames that make noise (the same numbers)
        segments = sounding_noise_segments(noise_mags, index, seed, hop)
    ola = overlap_add(segments, hop)
    ola = torch.nn.functional.pad(ola, [hop - delay, 0])
    acc = torch.nn.functional.pad(noise_tail, [0, ola.shape[1] - tail]) + ola
    noise = acc[:, : n * hop]
    new_tail = acc[:, n * hop: n * hop + tail]
    # harmonic segments: the previous frame, then all but the last; what the oscillator
    # advances over segments before frame 0 is taken off, so the phase is 0 at frame 0
    segment = torch.arange(n) + start - 1
    left_f0 = torch.cat([prev_f0, f0_hz[:, :-1]], 1)
    lo, hi = left_f0.to(torch.float64), f0_hz.to(torch.float64)
    advance = (hop * lo + (hi - lo) * ((hop - 1) / 2.0)) * (2.0 * math.pi / sample_rate)
    phase = phase - torch.where(segment < 0, advance, torch.zeros_like(advance)).sum(1)
    left_h = torch.cat([prev_harmonics, harmonics[:, :-1]], 1)
    audio, new_phase = harmonic_synth(left_f0, left_h, hop, sample_rate, phase, f0_hz[:, -1:],
                                      harmonics[:, -1:], trim=not graph)
    dry = audio + noise
    if graph or bool((start < 1).any()):  # segments before frame 0 are silent
        sounding = (segment >= 0).to(dry.dtype).view(1, n, 1)
        dry = (dry.view(batch, n, hop) * sounding).reshape(batch, n * hop)
    return dry, f0_hz[:, -1:], harmonics[:, -1:], new_phase, new_tail


def reverb_step(dry: torch.Tensor, reverb_history: torch.Tensor, reverb_previous: torch.Tensor,
                reverb_weight: torch.Tensor, graph: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dry audio ``[B, n * hop]`` -> dry + wet, and the new ``reverb_history`` and
    ``reverb_previous`` (see the module docs). ``reverb_weight``: ``reverb_partitions`` for
    the graph, else its complex form as (re, im) pairs ``[bins, K, 2]``
    (``complex_partitions``)."""
    batch = dry.shape[0]
    # reverb, partitioned overlap-save in blocks of P samples: Y[i] = sum_j X[i + j] H[K - 1 - j]
    # per bin (for the graph, complex products in real arithmetic)
    size = reverb_previous.shape[1]
    short = (-dry.shape[1]) % size  # a last call may end inside a partition: zeros complete it
    blocks = torch.nn.functional.pad(dry, [0, short]).reshape(batch, -1, size)
    joined = torch.cat([reverb_previous.unsqueeze(1), blocks], 1)
    if graph:
        pairs = torch.cat([joined[:, :-1], joined[:, 1:]], 2)        # [B, blocks, 2P]
    else:  # the same as a view, without the copy
        pairs = joined.reshape(batch, -1).unfold(1, 2 * size, size)
    spec = torch.fft.rfft(pairs, 2 * size)
    if graph:
        hist = torch.cat([reverb_history, torch.stack([spec.real, spec.imag], -1)], 1)
        n_parts = reverb_weight.shape[-1]
        windows = hist.unfold(1, n_parts, 1)                              # [B, n, bins, 2, K]
        y = torch.einsum("bncik,coik->bnco", windows, reverb_weight)       # [B, n, bins, 2]
        y_spec = torch.complex(y[..., 0], y[..., 1])
    else:  # the same products as complex numbers (3-6x faster), viewed without a copy
        hist = torch.cat([reverb_history, torch.view_as_real(spec)], 1)
        weight = torch.view_as_complex(reverb_weight)                   # [bins, K]
        x_spec = torch.view_as_complex(hist)                            # [B, n + K - 1, bins]
        y_spec = (x_spec.unfold(1, weight.shape[-1], 1) * weight).sum(-1)
    wet = torch.fft.irfft(y_spec, 2 * size)[..., size:]
    out = dry + wet.reshape(batch, -1)[:, : dry.shape[1]]
    return out, hist[:, blocks.shape[1]:], blocks[:, -1]
