"""Polyphonic timbre transfer: a recording with chords (piano, guitar, a choir) -> notes with
pitch bends (``features.transcribe``, Basic Pitch's network) -> the model's voices
(``pipelines.voices``) -> audio at the input's loudness.

Each note gets a MIDI channel of its own while it sounds (sixteen, reused least recently
first), so overlapping notes bend independently, as MPE controllers do. The octave is chosen
as ``transfer`` chooses it (``features.adjust``), from the notes' pitches weighted by their
durations. The recording is held in memory whole (transcription and its maps): at most
``MAX_POLY_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..features.adjust import auto_octaves, parse_octave
from ..features.transcribe import TranscribedNote, transcribe
from ..io import output_format, read_audio, refuse_overwrite
from ..limits import MAX_POLY_SECONDS, check_adjustment, check_voices
from ..models.model import Model
from ..progress import ProgressFactory, counted, no_progress
from .output import lufs, output_rate, write_output
from .score import NoteEvent
from .voices import needed_voices, render_tracks, tracks_seconds

BEND_STEP = 0.02   # semitones: a bend event when the pitch moved this much


@dataclass
class PolyResult:
    output: str
    seconds: float
    sample_rate: int
    notes: int
    voices: int          # most notes at once (the voices used)
    octaves: int
    limiter_note: str = ""


def transcribed_events(notes: list[TranscribedNote], semitones: float = 0.0
                       ) -> list[NoteEvent]:
    """Transcribed notes -> timed events, each note on its own channel while it sounds (the
    least recently used of 16), its bends (plus the fractional part of ``semitones``) as that
    channel's pitch bend."""
    whole = int(np.floor(semitones))
    frac = float(semitones - whole)
    free_at = np.full(16, -np.inf)
    events: list[NoteEvent] = []
    for n in sorted(notes, key=lambda n: n.start_s):
        c = int(np.argmin(free_at))
        free_at[c] = n.end_s
        key = int(np.clip(n.midi + whole, 0, 127))
        first = float(n.bends[0]) if n.bends.size else 0.0
        events.append(NoteEvent(n.start_s, "bend", c, 0, first + frac))
        events.append(NoteEvent(n.start_s, "on", c, key, max(0.05, n.velocity)))
        last = first
        for t, b in zip(n.bend_times[1:], n.bends[1:], strict=True):
            if abs(b - last) >= BEND_STEP and t < n.end_s:
                events.append(NoteEvent(float(t), "bend", c, 0, float(b) + frac))
                last = float(b)
        events.append(NoteEvent(n.end_s, "off", c, key))
    return sorted(events, key=lambda e: e.time_s)  # stable: a note's bend precedes its on


def choose_octaves(notes: list[TranscribedNote], model: Model, octave: str | int,
                   semitones: float) -> int:
    """``octave`` ("auto": as ``transfer`` chooses, from the notes' pitches weighted by their
    lengths), in octaves."""
    if octave != "auto":
        return int(octave)
    rate = 100.0
    f0 = np.concatenate([np.full(max(1, round((n.end_s - n.start_s) * rate)),
                                 440.0 * 2 ** ((n.midi + semitones - 69) / 12)) for n in notes])
    return auto_octaves(f0, model.stats)


def poly_transfer_file(input_path: str | Path, output_path: str | Path, model: Model,
                       octave: str | int = "auto", pitch_shift: float = 0.0,
                       voices: int = 64, sr_out: int | None = None, seed: int = 0,
                       progress: ProgressFactory = no_progress) -> PolyResult:
    """A polyphonic recording -> the same notes on ``model``'s voices (at most ``voices`` at
    once), at the input's loudness, written atomically to ``output_path``."""
    src, dst = Path(input_path), Path(output_path)
    refuse_overwrite(dst, src)
    output_format(dst)
    octave = parse_octave(octave)
    check_adjustment(octave, pitch_shift, "none")
    check_voices(voices)
    audio, rate = read_audio(src, max_seconds=MAX_POLY_SECONDS)
    if audio.size == 0 or not np.any(audio):
        raise UserError(f"{src} is silent: nothing to transcribe")
    with progress("transcription", audio.size / rate) as advance:
        notes = transcribe(audio, rate)
        advance(audio.size / rate)
    if not notes:
        raise UserError(f"no notes found in {src} (too quiet, or unpitched?)")
    octaves = choose_octaves(notes, model, octave, pitch_shift)
    events = transcribed_events(notes, 12 * octaves + pitch_shift)
    target = lufs(audio, rate)
    used = needed_voices(events, model.frame_rate, voices)
    chunks = render_tracks([(events, model)], voices, seed)
    sr_out = sr_out or output_rate(rate, model.sample_rate)
    seconds = tracks_seconds([events], model.frame_rate)
    with progress("synthesis", seconds) as advance:
        written = write_output(dst, counted(chunks, model.sample_rate, advance),
                               model.sample_rate, sr_out,
                               target_lufs=target if np.isfinite(target) else None)
    return PolyResult(str(dst), written.samples / sr_out, sr_out, len(notes), used, octaves,
                      written.limiter_note())
