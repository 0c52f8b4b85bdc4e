"""Differentiable DSP: pure tensor functions and thin modules over them. No I/O, no training."""

from .core import (
    SILENCE_DB,
    decoder_inputs,
    exp_sigmoid,
    fft_convolve,
    hz_to_midi,
    midi_to_hz,
    scale_f0,
    scale_loudness,
    upsample_linear,
)
from .harmonic import harmonic_amplitudes, harmonic_synth, oscillator_phase
from .noise import filtered_noise, noise_impulse_responses, noise_magnitudes, white_noise
from .reverb import reverb
from .synth import Controls, Synth, controls_from_raw, render

__all__ = [
    "SILENCE_DB", "Controls", "Synth", "controls_from_raw",
    "decoder_inputs", "exp_sigmoid", "fft_convolve", "filtered_noise",
    "harmonic_amplitudes", "harmonic_synth", "hz_to_midi", "midi_to_hz", "noise_impulse_responses",
    "noise_magnitudes", "oscillator_phase", "render", "reverb", "scale_f0", "scale_loudness",
    "upsample_linear", "white_noise",
]
