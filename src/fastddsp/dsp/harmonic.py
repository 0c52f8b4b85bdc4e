"""Harmonic oscillator bank: f0 and per-harmonic amplitudes at frame rate -> audio.

Speed design: the phase of harmonic k is k times the fundamental's phase (one cumulative sum
in float64), so ``sin(k * phase)`` for all k comes from the Chebyshev recurrence
``s_k = 2 cos(phase) s_(k-1) - s_(k-2)`` instead of a sine per harmonic and sample (max error
3e-5, i.e. -90 dB, for 60 harmonics in float32). With the signs ``+, +, -, -, +, +, ...``
folded into the sines it becomes ``v_k = (+/-) 2 cos(phase) v_(k-1) + v_(k-2)``: one fused
multiply-add (``addcmul``) per harmonic and sample; the signs go into the amplitudes.
Pieces of a few frames (a stream's steps) take ``sin(k * phase)`` directly instead: one op for
all harmonics, where the recurrence's op per harmonic would cost more than its arithmetic.
Amplitudes are linear between frames, so each frame segment of ``hop`` samples is
``(1 - w) * c[f] @ S + w * c[f + 1] @ S``: the sum over harmonics is one batched matmul. Only
harmonics that are audible somewhere in the signal are computed, and only frame segments
where some harmonic sounds (rests and a polyphonic engine's idle voices cost nothing).
"""

from __future__ import annotations

import math

import torch

from .core import exp_sigmoid, hold_last, interp_weights, upsample_linear


def harmonic_numbers(n_harmonics: int, dtype: torch.dtype = torch.float32,
                     device: torch.device | None = None) -> torch.Tensor:
    return torch.arange(1, n_harmonics + 1, dtype=dtype, device=device)


def audible_mask(f0_hz: torch.Tensor, n_harmonics: int, sample_rate: float,
                 max_hz: float = 0.0) -> torch.Tensor:
    """``[..., n_harmonics]`` boolean: harmonic k of f0 is strictly below Nyquist (and below
    ``max_hz`` when that is positive) and f0 > 0."""
    k = harmonic_numbers(n_harmonics, f0_hz.dtype, f0_hz.device)
    freqs = f0_hz.unsqueeze(-1) * k
    limit = sample_rate / 2.0 if max_hz <= 0 else min(max_hz, sample_rate / 2.0)
    return (freqs < limit) & (f0_hz.unsqueeze(-1) > 0)


def harmonic_signs(n_harmonics: int, dtype: torch.dtype = torch.float32,
                   device: torch.device | None = None) -> torch.Tensor:
    """``+1, +1, -1, -1, +1, +1, ...``: the signs ``signed_harmonic_sines`` carries."""
    k = torch.arange(n_harmonics, device=device)
    return 1.0 - 2.0 * torch.remainder(torch.div(k, 2, rounding_mode="floor"), 2).to(dtype)


def signed_harmonic_sines(phase: torch.Tensor, n_harmonics: int) -> torch.Tensor:
    """``harmonic_signs[k] * sin((k + 1) * phase)`` as ``[n, *phase.shape]``, by the
    sign-folded Chebyshev recurrence (one ``addcmul`` per harmonic)."""
    out = torch.empty([n_harmonics] + list(phase.shape), dtype=phase.dtype, device=phase.device)
    torch.sin(phase, out=out[0])
    if n_harmonics > 1:
        two_cos = 2.0 * torch.cos(phase)
        minus_two_cos = -two_cos
        torch.mul(out[0], two_cos, out=out[1])
        for i in range(2, n_harmonics):  # the sign flips from harmonic i-1 to i when i is even
            torch.addcmul(out[i - 2], out[i - 1], two_cos if i % 2 == 1 else minus_two_cos,
                          out=out[i])
    return out


def harmonic_amplitudes(
    amplitude_raw: torch.Tensor,
    distribution_raw: torch.Tensor,
    f0_hz: torch.Tensor,
    sample_rate: float,
    max_hz: float = 0.0,
) -> torch.Tensor:
    """Raw decoder outputs -> per-harmonic amplitudes ``[batch, frames, K]``.

    ``amplitude_raw`` is ``[batch, frames]`` (or ``[batch, frames, 1]``); both go through
    ``exp_sigmoid``. Harmonics at or above Nyquist (or ``max_hz``, when positive: the
    harmonic bandwidth, above which the noise alone plays) are silenced and the distribution
    is renormalised over the audible ones, so the overall amplitude is kept.
    """
    if amplitude_raw.dim() == 3:
        amplitude_raw = amplitude_raw[..., 0]
    amplitude = exp_sigmoid(amplitude_raw)
    dist = exp_sigmoid(distribution_raw)
    dist = dist * audible_mask(f0_hz, dist.shape[-1], sample_rate, max_hz).to(dist.dtype)
    dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-12)
    return amplitude.unsqueeze(-1) * dist


def oscillator_phase(
    f0_hz: torch.Tensor, hop: int, sample_rate: float, initial_phase: torch.Tensor | None = None,
    right_f0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fundamental phase per sample, wrapped to [0, 2pi), as float32 ``[batch, samples]``, and
    the phase after the last sample (float64 ``[batch]``: the state for the next block).

    The phase of sample n is the initial phase plus the integral of f0 (linear between frames)
    over the samples before it, so it is continuous across frame (and block) boundaries. Inside
    frame segment f it has a closed form, ``Phi_f + c (f_f m + (f_(f+1) - f_f) m (m - 1) /
    (2 hop))`` for m = 0..hop-1 and c = 2 pi / sample_rate, so only the segments' start phases
    ``Phi_f`` need a running sum (in float64, which keeps long signals exact); that is ~20x
    cheaper than a cumulative sum over every sample.
    """
    f0 = f0_hz.detach()
    seg_start, nxt, end = segment_phases(f0, hop, sample_rate, initial_phase, right_f0)
    phase = phase_within(seg_start, f0, nxt, hop, sample_rate)
    return phase.reshape(f0.shape[0], f0.shape[1] * hop), end


def segment_phases(f0: torch.Tensor, hop: int, sample_rate: float,
                   initial_phase: torch.Tensor | None = None,
                   right_f0: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``oscillator_phase``'s running sum: each frame segment's start phase ``Phi_f`` (float32
    ``[batch, frames]``), the f0 at its right end, and the phase after the last sample."""
    nxt = hold_last(f0) if right_f0 is None else torch.cat([f0[:, 1:], right_f0.detach()], 1)
    two_pi = 2.0 * math.pi
    lo, hi = f0.to(torch.float64), nxt.to(torch.float64)
    advance = (hop * lo + (hi - lo) * ((hop - 1) / 2.0)) * (two_pi / sample_rate)
    total = torch.cumsum(advance, dim=1)
    start = torch.zeros(f0.shape[0], 1, dtype=torch.float64, device=f0.device)
    if initial_phase is not None:
        start = start + initial_phase.to(torch.float64).view(-1, 1)
    seg_start = torch.remainder(start + total - advance, two_pi).to(torch.float32)
    end = torch.remainder(start[:, 0] + total[:, -1], two_pi)
    return seg_start, nxt, end


def phase_within(seg_start: torch.Tensor, f0: torch.Tensor, nxt: torch.Tensor, hop: int,
                 sample_rate: float) -> torch.Tensor:
    """``oscillator_phase``'s closed form inside segments (start phases ``seg_start``, f0 from
    ``f0`` to ``nxt``; any leading shape) -> the wrapped phase ``[..., hop]``."""
    two_pi = 2.0 * math.pi
    m = torch.arange(hop, dtype=torch.float32, device=f0.device)
    within = (two_pi / sample_rate) * (f0.unsqueeze(-1) * m
                                       + (nxt - f0).unsqueeze(-1) * (m * (m - 1) / (2 * hop)))
    return torch.remainder(seg_start.unsqueeze(-1) + within, two_pi)


# Pieces of up to this many samples take their sines directly, ``sin(k * phase)`` for all
# harmonics in one op: the recurrence costs an op per harmonic (about 4.5 us each, a 48 kHz
# frame's 40 harmonics 190 us against 7 us), and only wins on long pieces, where a sine costs
# about twice its multiply-add (measured crossover near 9,000 samples). Direct sines are the
# more exact (max error 8e-6 against 3e-5 for 40 harmonics).
DIRECT_SAMPLES = 8192


def highest_harmonic(amplitudes: torch.Tensor) -> torch.Tensor:
    """``[..., K]`` amplitudes -> the number of their highest non-zero harmonic (0: none),
    ``[...]`` int64 (int16 products: 2.5x faster than int64 ones)."""
    k = harmonic_numbers(amplitudes.shape[-1], torch.int16, amplitudes.device)
    return ((amplitudes.detach() != 0).to(torch.int16) * k).amax(-1).to(torch.int64)


def _sparse(seg_start: torch.Tensor, f0: torch.Tensor, nxt: torch.Tensor,
            amplitudes: torch.Tensor, right: torch.Tensor, count: torch.Tensor, hop: int,
            sample_rate: float, direct_samples: int = DIRECT_SAMPLES) -> torch.Tensor:
    """``harmonic_synth``'s sum over the frame segments where some harmonic sounds, each with
    the harmonics up to its highest sounding one, zeros elsewhere: the same numbers, at a cost
    that follows the notes, not the rests (or a voice's idle frames), and each note's own
    harmonic count (a high note's few, not a block's lowest note's many); the phase, too, only
    for those segments. Segments go in order of that count, in pieces of about 2M sine
    samples: the sines of every harmonic for a whole block (tens of MB at 48 kHz) would leave
    the cache, and the recurrence is bound by memory traffic (measured 1.35x slower at
    48 kHz); smaller pieces only add per-piece overhead (512k-sample pieces measured 1.1x
    slower at 16 kHz, 1.45x at 48 kHz). ``count`` ``[B, F]``: each segment's highest harmonic
    that is non-zero at either end (0: a silent segment)."""
    batch, n_frames = amplitudes.shape[0], amplitudes.shape[1]
    out = torch.zeros(batch * n_frames, hop, dtype=amplitudes.dtype, device=amplitudes.device)
    with torch.no_grad():  # ``count`` [B, F]: each segment's highest sounding harmonic
        count = count.flatten()
        rows = count.nonzero().squeeze(1)
        rows = rows[torch.argsort(count[rows], descending=True, stable=True)]
        counts: list[int] = count[rows].tolist()
    n_used = counts[0] if len(counts) > 0 else 1  # (no early return: TorchScript)
    signs = harmonic_signs(n_used, amplitudes.dtype, amplitudes.device)
    coef = (torch.stack([amplitudes[..., :n_used], right[..., :n_used]], dim=-2)
            * signs).reshape(batch * n_frames, 2, n_used)
    w = interp_weights(hop, amplitudes.dtype, amplitudes.device)
    flat_start, flat_f0, flat_nxt = seg_start.flatten(), f0.flatten(), nxt.flatten()
    a = 0
    while a < len(counts):
        n = counts[a]                                             # the piece's most
        part = rows[a: a + max(1, 2097152 // (hop * n))]
        a += part.numel()
        with torch.no_grad():
            f0_s, nxt_s = flat_f0[part], flat_nxt[part]
            phase = phase_within(flat_start[part], f0_s, nxt_s, hop, sample_rate)
            if phase.numel() <= direct_samples:  # a stream's few frames: no op per harmonic
                k = harmonic_numbers(n, phase.dtype, phase.device).view(n, 1, 1)
                sines = torch.sin(k * phase) * signs[:n].view(n, 1, 1)
            else:
                sines = signed_harmonic_sines(phase, n)           # [n, S, hop]
            f0_s, nxt_s = f0_s.view(1, -1), nxt_s.view(1, -1)
            if bool((torch.maximum(f0_s, nxt_s) * n >= sample_rate / 2).any()):
                nyquist_guard(sines, f0_s, nxt_s, hop, sample_rate)
        seg = torch.bmm(coef[part, :, :n], sines.transpose(0, 1))
        out[part] = seg[:, 0] + (seg[:, 1] - seg[:, 0]) * w
    return out.view(batch, n_frames * hop)


def nyquist_guard(sines: torch.Tensor, f0_hz: torch.Tensor, next_f0: torch.Tensor, hop: int,
                  sample_rate: float) -> None:
    """In place: ``sines`` ``[K, batch, frames * hop]`` times ``audible_mask`` of the
    per-sample f0 (linear from ``f0_hz`` to ``next_f0`` across each frame segment), touching
    only the (segment, harmonic) pairs whose mask is not all ones: a harmonic below Nyquist
    at both ends of a segment is below it throughout (f0 is linear there), one at or above it
    at both ends is silenced whole, and only one that crosses the limit inside the segment
    (or where f0 reaches 0) is masked sample by sample. The same numbers as masking every
    sample, at a cost that follows the few crossings instead of every harmonic and sample:
    vibrato and slides make some harmonic cross Nyquist in most segments."""
    n_harm = sines.shape[0]
    limit = sample_rate / 2.0
    k = harmonic_numbers(n_harm, f0_hz.dtype, f0_hz.device)
    lo = torch.minimum(f0_hz, next_f0).flatten().unsqueeze(-1)  # [segments, 1]
    hi = torch.maximum(f0_hz, next_f0).flatten().unsqueeze(-1)
    silent = (lo * k >= limit) | (hi <= 0)                       # [segments, K]
    partly = ((hi * k >= limit) | (lo <= 0)) & ~silent
    segments = sines.view(n_harm, -1, hop)                       # [K, segments, hop]
    pairs = torch.nonzero(silent)                                # [P, 2]: segment, harmonic
    if pairs.shape[0] > 0:
        segments[pairs[:, 1], pairs[:, 0]] = 0.0
    pairs = torch.nonzero(partly)
    if pairs.shape[0] > 0:  # upsample_linear's formula, on these segments only
        seg, harm = pairs[:, 0], pairs[:, 1]
        a = f0_hz.flatten()[seg].unsqueeze(-1)
        b = next_f0.flatten()[seg].unsqueeze(-1)
        f0_up = a + (b - a) * interp_weights(hop, f0_hz.dtype, f0_hz.device)
        keep = (f0_up * k[harm].unsqueeze(-1) < limit) & (f0_up > 0)
        segments[harm, seg] = segments[harm, seg] * keep.to(sines.dtype)


def harmonic_synth(
    f0_hz: torch.Tensor,
    amplitudes: torch.Tensor,
    hop: int,
    sample_rate: float,
    initial_phase: torch.Tensor | None = None,
    right_f0: torch.Tensor | None = None,
    right_amplitudes: torch.Tensor | None = None,
    trim: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of harmonics of f0. ``f0_hz`` ``[batch, frames]``, ``amplitudes`` ``[batch, frames, K]``.

    Returns audio ``[batch, frames * hop]`` and the final phase ``[batch]``. A harmonic whose
    instantaneous frequency is at or above Nyquist is silent at that sample, even inside a
    frame segment where f0 rises across the limit. ``trim=False`` computes every harmonic and
    always applies the Nyquist guard: the same output without data-dependent shapes, for
    graph export.
    """
    right = hold_last(amplitudes) if right_amplitudes is None else torch.cat(
        [amplitudes[:, 1:], right_amplitudes], 1)
    if trim:  # only sounding segments, each up to its highest sounding harmonic
        f0 = f0_hz.detach()
        seg_start, nxt, end = segment_phases(f0, hop, sample_rate, initial_phase, right_f0)
        top = highest_harmonic(amplitudes)       # at both ends of each segment
        top_right = hold_last(top) if right_amplitudes is None else torch.cat(
            [top[:, 1:], highest_harmonic(right_amplitudes)], 1)
        audio = _sparse(seg_start, f0, nxt, amplitudes, right, torch.maximum(top, top_right),
                        hop, sample_rate)
    else:
        phase, end = oscillator_phase(f0_hz, hop, sample_rate, initial_phase, right_f0)
        audio = _dense(phase, f0_hz, right_f0, amplitudes, right, hop, sample_rate)
    return audio, end


def _dense(phase: torch.Tensor, f0_hz: torch.Tensor, right_f0: torch.Tensor | None,
           amps: torch.Tensor, right: torch.Tensor, hop: int, sample_rate: float
           ) -> torch.Tensor:
    """``harmonic_synth`` without data-dependent shapes (the exported graph): every harmonic
    and segment at once, every sample masked at Nyquist."""
    batch, n_frames, n_used = amps.shape
    signs = harmonic_signs(n_used, amps.dtype, amps.device)
    coef = (torch.stack([amps, right], dim=-2) * signs).reshape(batch * n_frames, 2, n_used)
    with torch.no_grad():
        sines = signed_harmonic_sines(phase, n_used)  # [K, B, N], signs folded in
        f0_up = upsample_linear(f0_hz.detach(), hop,
                                right=None if right_f0 is None else right_f0.detach())
        sines.mul_(audible_mask(f0_up, n_used, sample_rate).permute(2, 0, 1).to(sines.dtype))
    seg = torch.bmm(coef, sines.view(n_used, batch * n_frames, hop).transpose(0, 1))
    w = interp_weights(hop, seg.dtype, seg.device)
    audio = seg[:, 0] + (seg[:, 1] - seg[:, 0]) * w
    return audio.reshape(batch, n_frames * hop)
