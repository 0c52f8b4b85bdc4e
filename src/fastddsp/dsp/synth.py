"""The synthesis chain: raw decoder outputs -> controls -> harmonic + filtered noise -> reverb.

``controls_from_raw`` turns network outputs into controls (nonlinearities, Nyquist handling);
``render`` turns controls into audio. ``Synth`` is the thin module that owns the reverb IR.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .harmonic import harmonic_amplitudes, harmonic_synth
from .noise import filtered_noise, indexed_noise, noise_magnitudes, white_noise
from .reverb import initial_impulse_response, reverb, reverb_fft_size, reverb_spectrum


@dataclass
class Controls:
    """Frame-rate synthesis controls: ``f0_hz`` ``[B, F]``, ``harmonics`` ``[B, F, K]``
    (per-harmonic linear amplitudes), ``noise`` ``[B, F, bands]`` (linear band magnitudes)."""

    f0_hz: torch.Tensor
    harmonics: torch.Tensor
    noise: torch.Tensor


def split_raw(raw: torch.Tensor, n_harmonics: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoder output ``[B, F, 1 + K + bands]`` -> (amplitude, distribution, noise) raw parts."""
    return raw[..., 0], raw[..., 1: 1 + n_harmonics], raw[..., 1 + n_harmonics:]


def controls_from_raw(raw: torch.Tensor, f0_hz: torch.Tensor, n_harmonics: int,
                      sample_rate: float) -> Controls:
    amp, dist, noise = split_raw(raw, n_harmonics)
    return Controls(f0_hz, harmonic_amplitudes(amp, dist, f0_hz, sample_rate),
                    noise_magnitudes(noise))


def render(controls: Controls, hop: int, sample_rate: float, reverb_ir: torch.Tensor | None,
           generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
           seed: int | None = None, reverb_spectrum: torch.Tensor | None = None
           ) -> torch.Tensor:
    """Controls -> audio ``[B, F * hop]``. The white noise is ``noise`` if given, else the
    indexable stream ``seed`` if given (what chunked rendering reproduces), else drawn from
    ``generator``."""
    harmonic, _ = harmonic_synth(controls.f0_hz, controls.harmonics, hop, sample_rate)
    if noise is None and seed is not None:
        noise = indexed_noise(seed, 0, harmonic.shape[1], harmonic.shape[0])
    if noise is None:
        noise = white_noise(tuple(harmonic.shape), generator, harmonic.device)
    audio = harmonic + filtered_noise(controls.noise, noise, hop)
    if reverb_ir is not None:
        audio = reverb(audio, reverb_ir, spectrum=reverb_spectrum)
    return audio


class Synth(nn.Module):
    """Harmonic + noise -> reverb, with a learnable impulse response."""

    def __init__(self, sample_rate: int, hop: int, n_harmonics: int, reverb_seconds: float):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop = hop
        self.n_harmonics = n_harmonics
        n_ir = round(reverb_seconds * sample_rate)
        self.reverb_ir = (nn.Parameter(initial_impulse_response(n_ir, sample_rate))
                          if n_ir > 0 else None)
        self._spectra: dict[tuple[int, int, int], torch.Tensor] = {}

    def controls(self, raw: torch.Tensor, f0_hz: torch.Tensor) -> Controls:
        return controls_from_raw(raw, f0_hz, self.n_harmonics, self.sample_rate)

    def forward(self, controls: Controls, generator: torch.Generator | None = None,
                seed: int | None = None) -> torch.Tensor:
        spectrum = None
        if self.reverb_ir is not None and not torch.is_grad_enabled():
            spectrum = self.ir_spectrum(reverb_fft_size(controls.f0_hz.shape[1] * self.hop,
                                                        self.reverb_ir.shape[-1]))
        return render(controls, self.hop, self.sample_rate, self.reverb_ir, generator,
                      seed=seed, reverb_spectrum=spectrum)

    def ir_spectrum(self, n_fft: int) -> torch.Tensor:
        """The IR's spectrum, cached per size while the IR is unchanged (inference)."""
        assert self.reverb_ir is not None
        key = (n_fft, self.reverb_ir._version, self.reverb_ir.data_ptr())
        if key not in self._spectra:
            if len(self._spectra) > 8:
                self._spectra.clear()
            with torch.no_grad():
                self._spectra[key] = reverb_spectrum(self.reverb_ir.detach(), n_fft)
        return self._spectra[key]
