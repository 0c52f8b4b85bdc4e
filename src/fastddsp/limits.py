"""The valid ranges of everything a user gives fastddsp, in one place.

Input outside them is refused with one line (``UserError``, exit 2), never played: a file
scaled by 1e30, a 1 Hz WAV that claims hours, a score note at 1e12 s or MIDI note 300, an f0
above Nyquist. The stream, which must not stop mid-performance, clamps instead (see
``realtime.stream.Stream``). docs/errors.md lists these values.
"""

from __future__ import annotations

import numpy as np

from .errors import UserError

MIN_INPUT_RATE = 4000          # Hz: an input file's sample rate, at least
MAX_INPUT_RATE = 192000        # Hz: and at most (memory of a bounded read grows with it)
MAX_INPUT_PEAK = 10.0          # |sample| of input audio (+20 dBFS; float files may exceed 1.0)
MAX_SECONDS = 24 * 3600.0      # the longest score, control file or rendering
LOUDNESS_MAX_DB = 50.0         # control loudness ceiling (full-scale white noise is about +18)
MIDI_RANGE = (0.0, 127.0)      # notes of a score or MIDI file
OCTAVE_RANGE = range(-4, 5)    # a transfer's whole-octave shift
PITCH_SHIFT_MAX = 24.0         # |semitones| of a transfer's extra pitch shift
LOUDNESS_SHIFT_MAX_DB = 60.0   # |dB| of a transfer's loudness offset
MAX_BLOCK = 65536              # samples in one block of a real-time engine
MAX_VOICES = 256               # voices of one polyphonic engine (a track, a keyboard)
BEND_RANGE_MAX = 48.0          # semitones of a full pitch-wheel bend
NN_TILDE_VOICES_MAX = 64       # inlet pairs of the nn~ export's synthesize_voices
MAX_POLY_SECONDS = 3600.0      # a polyphonic transfer's input (transcribed in memory)


def check_block_size(size: int) -> None:
    """A real-time engine's block: 1..MAX_BLOCK samples."""
    if not 1 <= int(size) <= MAX_BLOCK:
        raise UserError(f"block size must be within 1..{MAX_BLOCK} samples, not {size}")


def check_voices(count: int, what: str = "the number of voices") -> None:
    """A polyphonic engine's voices: 1..MAX_VOICES."""
    if not 1 <= count <= MAX_VOICES:
        raise UserError(f"{what} must be within 1..{MAX_VOICES}, not {count}")


def check_input_rate(rate: int, where: str) -> None:
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise UserError(f"{where} has a sample rate of {rate} Hz; fastddsp reads "
                        f"{MIN_INPUT_RATE}..{MAX_INPUT_RATE} Hz")


def check_samples(audio: np.ndarray, where: str) -> None:
    """Input samples must be finite and within ±MAX_INPUT_PEAK."""
    if audio.size == 0:
        return
    if not np.all(np.isfinite(audio)):
        raise UserError(f"{where} contains NaN or infinite samples")
    peak = float(np.max(np.abs(audio)))
    if peak > MAX_INPUT_PEAK:
        raise UserError(f"{where} has samples of magnitude {peak:.3g}; fastddsp reads audio "
                        f"within ±{MAX_INPUT_PEAK:g} (+{20 * np.log10(MAX_INPUT_PEAK):.0f} dBFS)")


def check_seconds(seconds: float, what: str) -> None:
    if not np.isfinite(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise UserError(f"{what} is {seconds:g} s; fastddsp renders 0..{MAX_SECONDS:g} s "
                        f"({MAX_SECONDS / 3600:g} h)")


def check_controls(f0_hz: np.ndarray, loudness_db: np.ndarray, sample_rate: int,
                   where: str) -> None:
    """Control curves: f0 finite within 0..Nyquist, loudness finite and at most
    LOUDNESS_MAX_DB (anything at or below -80 dB is silence)."""
    f0 = np.asarray(f0_hz, np.float64)
    ld = np.asarray(loudness_db, np.float64)
    nyquist = sample_rate / 2
    if np.any(f0 < 0):
        raise UserError(f"{where}: f0 must not be negative")
    if not np.all(np.isfinite(f0)) or np.any(f0 > nyquist):
        raise UserError(f"{where}: f0 must be a finite frequency within 0..{nyquist:g} Hz "
                        f"(the model's Nyquist frequency)")
    if not np.all(np.isfinite(ld)) or np.any(ld > LOUDNESS_MAX_DB):
        raise UserError(f"{where}: loudness must be a finite number of dB, at most "
                        f"{LOUDNESS_MAX_DB:+g} (full-scale noise is about +18 dB)")


def check_adjustment(octave: str | int, pitch_shift: float, loudness: str | float) -> None:
    """A transfer's adjustments: octave ``auto`` or within OCTAVE_RANGE, pitch shift within
    ±PITCH_SHIFT_MAX semitones, loudness ``auto``/``none`` or within ±LOUDNESS_SHIFT_MAX_DB
    (beyond them the instrument plays outside anything it learned, or clips)."""
    if octave != "auto" and octave not in OCTAVE_RANGE:
        raise UserError(f"octave must be auto or within {OCTAVE_RANGE[0]}..{OCTAVE_RANGE[-1]}, "
                        f"not {octave}")
    if not np.isfinite(pitch_shift) or abs(pitch_shift) > PITCH_SHIFT_MAX:
        raise UserError(f"pitch shift must be within ±{PITCH_SHIFT_MAX:g} semitones, "
                        f"not {pitch_shift:g}")
    if not isinstance(loudness, str) and (not np.isfinite(loudness)
                                          or abs(loudness) > LOUDNESS_SHIFT_MAX_DB):
        raise UserError(f"loudness must be auto, none or within ±{LOUDNESS_SHIFT_MAX_DB:g} dB, "
                        f"not {loudness:g}")
