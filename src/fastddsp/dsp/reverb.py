"""Reverb: convolution with an impulse response, dry signal added."""

from __future__ import annotations

import math

import torch

from .core import fft_convolve, next_fast_len


def wet_impulse_response(ir: torch.Tensor) -> torch.Tensor:
    """The wet part of an IR: its first sample is forced to 0 so the dry path is exactly 1."""
    return torch.nn.functional.pad(ir[..., 1:], (1, 0))


def reverb_fft_size(n_samples: int, ir_len: int) -> int:
    """A fast FFT size for the full convolution, always even, so that the size is recoverable
    from the length of a real spectrum (``2 * (bins - 1)``), as ``reverb(spectrum=)`` does."""
    return 2 * next_fast_len((n_samples + ir_len) // 2)


def reverb_spectrum(ir: torch.Tensor, n_fft: int) -> torch.Tensor:
    """The spectrum of the wet IR at ``n_fft`` points (what ``reverb`` multiplies by)."""
    return torch.fft.rfft(wet_impulse_response(ir), n_fft)


def reverb(audio: torch.Tensor, ir: torch.Tensor, keep_tail: bool = False,
           spectrum: torch.Tensor | None = None) -> torch.Tensor:
    """``audio + audio * ir`` (convolution), ``audio`` ``[batch, samples]``, ``ir`` ``[ir_len]``
    or ``[batch, ir_len]``. Cropped to the input length unless ``keep_tail``. ``spectrum``
    may pass ``reverb_spectrum(ir, reverb_fft_size(...))`` computed once for a fixed IR."""
    if spectrum is not None:
        n_full = audio.shape[-1] + ir.shape[-1] - 1
        n_fft = 2 * (spectrum.shape[-1] - 1)
        wet = torch.fft.irfft(torch.fft.rfft(audio, n_fft) * spectrum, n_fft)[..., :n_full]
    else:
        wet = fft_convolve(audio, wet_impulse_response(ir))
    if keep_tail:
        dry = torch.nn.functional.pad(audio, (0, wet.shape[-1] - audio.shape[-1]))
        return dry + wet
    return audio + wet[..., : audio.shape[-1]]


def initial_impulse_response(n_samples: int, sample_rate: float, decay_s: float = 0.25,
                             gain: float = 0.02, seed: int = 0) -> torch.Tensor:
    """A small exponentially decaying noise burst: a plausible untrained room (RT60 decay_s)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n_samples, dtype=torch.float32) / sample_rate
    envelope = torch.exp(-t * (3.0 * math.log(10.0) / decay_s))
    return gain * torch.randn(n_samples, generator=gen) * envelope



def band_noise(n_samples: int, sample_rate: float, n_bands: int = 16, low_hz: float = 100.0,
               seed: int = 0) -> torch.Tensor:
    """Fixed white noise split into ``n_bands`` bands ``[n_bands, n_samples]`` (edges 0, then
    log-spaced from ``low_hz`` to Nyquist) by FFT masks, so that the bands sum to the noise."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_samples, generator=gen)
    spectrum = torch.fft.rfft(noise)
    freqs = torch.fft.rfftfreq(n_samples, 1.0 / sample_rate)
    edges = torch.cat([torch.zeros(1), torch.logspace(math.log10(low_hz),
                                                      math.log10(sample_rate / 2), n_bands)])
    band = torch.bucketize(freqs, edges[1:-1], right=True)  # 0 .. n_bands - 1
    masks = band[None, :] == torch.arange(n_bands)[:, None]
    return torch.fft.irfft(spectrum[None] * masks, n_samples)


def decaying_noise_ir(bands: torch.Tensor, log_gain: torch.Tensor, log_rt60: torch.Tensor,
                      sample_rate: float) -> torch.Tensor:
    """A room as exponentially decaying noise per frequency band: ``sum_b gain_b *
    10^(-3 t / rt60_b) * bands_b(t)`` (``bands`` from ``band_noise``). Two numbers per band
    cannot learn a tail that never decays, as a free IR trained on little audio does."""
    t = torch.arange(bands.shape[-1], device=bands.device, dtype=bands.dtype) / sample_rate
    envelope = torch.exp(-t[None, :] * (3.0 * math.log(10.0)) / torch.exp(log_rt60)[:, None])
    return (torch.exp(log_gain)[:, None] * envelope * bands).sum(0)
