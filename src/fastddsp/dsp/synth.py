"""The synthesis chain: raw decoder outputs -> controls -> harmonic + filtered noise -> reverb.

``controls_from_raw`` turns network outputs into controls (nonlinearities, Nyquist handling);
``render`` turns controls into audio. ``Synth`` is the thin module that owns the reverb IR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .core import next_fast_len, silence_gate
from .harmonic import harmonic_amplitudes, harmonic_synth
from .noise import filtered_noise, indexed_noise, noise_magnitudes, white_noise
from .reverb import (
    initial_impulse_response,
    reverb,
    reverb_fft_size,
    reverb_spectrum,
)
from .stream_synth import reverb_partitions


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


def raw_amplitudes(raw: torch.Tensor, f0_hz: torch.Tensor, n_harmonics: int,
                   sample_rate: float, max_harmonic_hz: float = 0.0,
                   noise_floor: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder output -> the harmonic and noise amplitudes ``[B, F, K]``, ``[B, F, bands]``.
    Harmonics stop at ``max_harmonic_hz`` (when positive, else Nyquist); ``noise_floor``
    ``[bands]`` (a model's learned background noise) is added to every frame's band
    magnitudes."""
    amp, dist, noise = split_raw(raw, n_harmonics)
    magnitudes = noise_magnitudes(noise)
    if noise_floor is not None:
        magnitudes = magnitudes + noise_floor
    return harmonic_amplitudes(amp, dist, f0_hz, sample_rate, max_harmonic_hz), magnitudes


def controls_from_raw(raw: torch.Tensor, f0_hz: torch.Tensor, n_harmonics: int,
                      sample_rate: float, max_harmonic_hz: float = 0.0,
                      noise_floor: torch.Tensor | None = None) -> Controls:
    return Controls(f0_hz, *raw_amplitudes(raw, f0_hz, n_harmonics, sample_rate,
                                           max_harmonic_hz, noise_floor))


def gated_controls(raw: torch.Tensor, f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                   n_harmonics: int, sample_rate: float, closed_db: float, open_db: float,
                   max_harmonic_hz: float = 0.0, noise_floor: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``raw_amplitudes`` with the silence gate applied (inference): both faded out below
    ``open_db``, the noise floor too."""
    harmonics, noise = raw_amplitudes(raw, f0_hz, n_harmonics, sample_rate, max_harmonic_hz,
                                      noise_floor)
    gate = silence_gate(loudness_db, closed_db, open_db).unsqueeze(-1)
    return harmonics * gate, noise * gate


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


NOISE_FLOOR_START = 1e-4  # initial band magnitude of a learned noise floor


class Synth(nn.Module):
    """Harmonic + noise -> reverb, with a learnable impulse response and, when
    ``noise_floor``, a learnable constant band magnitude added to the noise of every frame: the
    recording's background (room tone, hiss), which otherwise the decoder must re-create from
    pitch and loudness, and fails to in rests. ``max_harmonic_hz`` (when positive) is the
    harmonic bandwidth."""

    def __init__(self, sample_rate: int, hop: int, n_harmonics: int, reverb_seconds: float,
                 n_noise_bands: int = 65, max_harmonic_hz: float = 0.0,
                 noise_floor: bool = False):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop = hop
        self.n_harmonics = n_harmonics
        self.max_harmonic_hz = max_harmonic_hz
        self.n_noise_bands = n_noise_bands
        self.log_noise_floor = (nn.Parameter(torch.full((n_noise_bands,),
                                                        math.log(NOISE_FLOOR_START)))
                                if noise_floor else None)
        n_ir = round(reverb_seconds * sample_rate)
        self.reverb_ir = (nn.Parameter(initial_impulse_response(n_ir, sample_rate))
                          if n_ir > 0 else None)
        self._spectra: dict[tuple[int, int, int], torch.Tensor] = {}

    @property
    def noise_floor(self) -> torch.Tensor | None:
        """The learned background band magnitudes ``[bands]``, or None."""
        return None if self.log_noise_floor is None else torch.exp(self.log_noise_floor)

    def frozen_noise_floor(self) -> torch.Tensor:
        """The noise floor as a constant ``[bands]``, zeros without one: what the streaming
        engine and the chain graph add, so that they need no optional tensor."""
        floor = self.noise_floor
        return torch.zeros(self.n_noise_bands) if floor is None else floor.detach().clone()

    def controls(self, raw: torch.Tensor, f0_hz: torch.Tensor) -> Controls:
        return controls_from_raw(raw, f0_hz, self.n_harmonics, self.sample_rate,
                                 self.max_harmonic_hz, self.noise_floor)

    def forward(self, controls: Controls, generator: torch.Generator | None = None,
                seed: int | None = None, reverb_ir: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Controls -> audio through the model's impulse response, or through ``reverb_ir``
        when given (training generates the IR from a room model: ``training.room``)."""
        if reverb_ir is not None:
            return render(controls, self.hop, self.sample_rate, reverb_ir, generator,
                          seed=seed)
        spectrum = None
        if self.reverb_ir is not None and not torch.is_grad_enabled():
            spectrum = self.ir_spectrum(reverb_fft_size(controls.f0_hz.shape[1] * self.hop,
                                                        self.reverb_ir.shape[-1]))
        return render(controls, self.hop, self.sample_rate, self.reverb_ir, generator,
                      seed=seed, reverb_spectrum=spectrum)

    def ir_partitions(self, partition: int) -> torch.Tensor:
        """``reverb_partitions`` of the IR, cached per size while the IR is unchanged."""
        ir = self.reverb_ir
        key = (-partition, -1 if ir is None else ir._version, 0 if ir is None else ir.data_ptr())
        if key not in self._spectra:
            if len(self._spectra) > 8:
                self._spectra.clear()
            with torch.no_grad():
                self._spectra[key] = reverb_partitions(ir, partition)
        return self._spectra[key]

    def partition_frames(self) -> int:
        """The reverb partition (in frames) for offline rendering: one partition holds the
        whole IR, and its FFT (two partitions long) is 5-smooth when the hop is."""
        n_ir = 1 if self.reverb_ir is None else self.reverb_ir.shape[-1]
        return next_fast_len(-(-n_ir // self.hop))

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
