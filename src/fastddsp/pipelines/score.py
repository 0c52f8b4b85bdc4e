"""Notes -> expressive f0 and loudness curves (portamento between notes, vibrato that fades
in, attack and release), for synthesis without input audio."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import mido
import numpy as np
import scipy.signal

from ..dsp.core import SILENCE_DB
from ..features.frames import Features
from ..limits import MAX_SECONDS, MIDI_RANGE


@dataclass(frozen=True)
class Note:
    midi: float
    start_s: float
    duration_s: float
    velocity: float = 0.8   # 0..1


# A short phrase in the violin's middle register (D major), used by `fastddsp demo`.
DEMO_MELODY: tuple[Note, ...] = tuple(
    Note(m, t, d) for m, t, d in [
        (74, 0.0, 0.45), (76, 0.5, 0.45), (78, 1.0, 0.45), (79, 1.5, 0.45),
        (81, 2.0, 0.9), (78, 3.0, 0.45), (74, 3.5, 0.45), (76, 4.0, 1.2),
    ]
)


RELEASE_S = 0.12   # a note's release after its end
TAIL_S = 0.3       # silence after the last release (the room's reverb)


def score_seconds(notes: tuple[Note, ...] | list[Note]) -> float:
    """How long ``notes_to_features`` renders ``notes`` (with the default release and tail)."""
    return max(n.start_s + n.duration_s for n in notes) + RELEASE_S + TAIL_S


def notes_to_features(notes: tuple[Note, ...] | list[Note], frame_rate: float,
                      vibrato_hz: float = 5.5, vibrato_cents: float = 25.0,
                      attack_s: float = 0.05, release_s: float = RELEASE_S,
                      glide_s: float = 0.04, tail_s: float = TAIL_S) -> Features:
    """Render notes to frame-rate features. Silence is -80 dB loudness with f0 held at the
    nearest note, so the oscillator never jumps."""
    if not notes:
        raise ValueError("no notes")
    end = max(n.start_s + n.duration_s for n in notes) + release_s + tail_s
    n_frames = int(np.ceil(end * frame_rate))
    t = np.arange(n_frames) / frame_rate
    midi = np.full(n_frames, np.nan)
    gain = np.zeros(n_frames)
    for note in sorted(notes, key=lambda n: n.start_s):
        # the frames the note reaches: its onset to the end of its release
        a = max(0, int(np.floor(note.start_s * frame_rate)))
        b = min(n_frames, int(np.ceil((note.start_s + note.duration_s + release_s)
                                      * frame_rate)) + 1)
        local = t[a:b] - note.start_s
        held = (local >= 0) & (local < note.duration_s)
        releasing = (local >= note.duration_s) & (local < note.duration_s + release_s)
        depth = np.clip((local - 0.2) / 0.3, 0, 1)  # vibrato grows in after 0.2 s
        vib = depth * vibrato_cents / 100 * np.sin(2 * np.pi * vibrato_hz * local)
        span = midi[a:b]
        span[held] = note.midi + vib[held]
        span[releasing & np.isnan(span)] = note.midi
        attack = np.clip(local / attack_s, 0, 1)
        release = np.clip(1 - (local - note.duration_s) / release_s, 0, 1)
        env = np.where(held, attack, np.where(releasing, release, 0.0))
        gain[a:b] = np.maximum(gain[a:b], env * note.velocity)
    # hold pitch through rests, then glide between notes
    idx = np.where(~np.isnan(midi), np.arange(n_frames), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(~np.isnan(midi)))
    midi = np.where(np.isnan(midi), midi[idx], midi)
    midi[:first] = midi[first]
    k = max(1, round(glide_s * frame_rate))
    midi = np.convolve(np.pad(midi, (k, k), mode="edge"), np.ones(2 * k + 1) / (2 * k + 1),
                       mode="valid")
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    loudness = np.where(gain > 1e-4, 20 * np.log10(np.maximum(gain, 1e-4)) - 20, SILENCE_DB)
    loudness = np.maximum(loudness, SILENCE_DB)
    return Features(f0.astype(np.float32), loudness.astype(np.float32),
                    (gain > 0).astype(np.float32), frame_rate)


def check_notes(notes: list[Note]) -> list[Note]:
    """Every note within the valid ranges (``limits``): MIDI 0..127, a finite start >= 0, a
    finite duration > 0, velocity in (0, 1], and the score at most ``MAX_SECONDS`` long;
    a ValueError names the first note that is not."""
    if not notes:
        raise ValueError("the score has no notes")
    lo, hi = MIDI_RANGE
    for i, n in enumerate(notes, 1):
        if not lo <= n.midi <= hi:
            raise ValueError(f"note {i}: MIDI note {n.midi:g} is outside {lo:g}..{hi:g}")
        if not (math.isfinite(n.start_s) and n.start_s >= 0 and math.isfinite(n.duration_s)
                and n.duration_s > 0):
            raise ValueError(f"note {i}: start must be a finite time >= 0 and duration a "
                             f"finite time > 0")
        if not 0 < n.velocity <= 1:
            raise ValueError(f"note {i}: velocity must be within (0, 1]")
        if n.start_s + n.duration_s > MAX_SECONDS:
            raise ValueError(f"note {i}: ends at {n.start_s + n.duration_s:.6g} s; a score may "
                             f"last at most {MAX_SECONDS:g} s ({MAX_SECONDS / 3600:g} h)")
    return notes


NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_note(text: str) -> float:
    """``"A4"``, ``"C#5"``, ``"Eb3"`` or a MIDI number -> MIDI note number."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    if len(t) < 2 or t[0].upper() not in NOTE_NAMES:
        raise ValueError(f"not a note: {text!r}")
    base, rest = NOTE_NAMES[t[0].upper()], t[1:]
    while rest and rest[0] in "#b":
        base += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    try:
        octave = int(rest)
    except ValueError:
        raise ValueError(f"not a note: {text!r}") from None
    return float(base + 12 * (octave + 1))


def read_text_score(text: str) -> list[Note]:
    """One note per line: ``NOTE START_S DURATION_S [VELOCITY]``; a ``#`` at the start of a
    line or after a space starts a comment."""
    notes = []
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # comments, not sharps (C#5)
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) not in (3, 4):
            raise ValueError(f"line {number}: expected NOTE START DURATION [VELOCITY]")
        try:
            vel = float(parts[3]) if len(parts) == 4 else 0.8
            note = Note(parse_note(parts[0]), float(parts[1]), float(parts[2]), vel)
        except ValueError as e:
            raise ValueError(f"line {number}: {e}") from None
        try:
            check_notes([note])
        except ValueError as e:
            raise ValueError(f"line {number}: {str(e).removeprefix('note 1: ')}") from None
        notes.append(note)
    return check_notes(notes)


def read_midi(path: str) -> list[Note]:
    """The notes of a MIDI file (all tracks, tempo changes honoured), in seconds."""
    mid = mido.MidiFile(path)
    t = 0.0
    on: dict[tuple[int, int], tuple[float, int]] = {}
    notes = []
    for msg in mid:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            on[(msg.channel, msg.note)] = (t, msg.velocity)
        elif msg.type in ("note_off", "note_on") and (msg.channel, msg.note) in on:
            start, vel = on.pop((msg.channel, msg.note))
            if t > start:
                notes.append(Note(float(msg.note), start, t - start, vel / 127))
    if not notes:
        raise ValueError("the MIDI file has no notes")
    return sorted(notes, key=lambda n: n.start_s)


VOICE_PHRASE = tuple(Note(m, t, d) for m, t, d in [
    (50, 0.1, 0.55), (53, 0.7, 0.55), (55, 1.3, 0.8), (57, 2.2, 0.4), (55, 2.65, 0.4),
    (53, 3.1, 1.0)])


def demo_voice(sample_rate: int = 16000) -> np.ndarray:
    """A sung "ah" phrase in a low male range: band-limited glottal sawtooth with vibrato,
    two formant resonances and breath noise. Deterministic."""
    feats = notes_to_features(VOICE_PHRASE, 250.0, vibrato_cents=35.0)
    hop = sample_rate / 250.0
    t = np.arange(int(feats.n_frames * hop)) / sample_rate
    f0 = np.interp(t, feats.times, feats.f0_hz)
    gain = np.interp(t, feats.times, 10 ** ((feats.loudness_db + 20) / 20) * (
        feats.loudness_db > SILENCE_DB))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k * (k * f0 < sample_rate / 2) for k in range(1, 60))
    for fc, bw in ((700.0, 110.0), (1220.0, 120.0), (2600.0, 200.0)):
        r = np.exp(-np.pi * bw / sample_rate)
        b, a = [1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sample_rate), r * r]
        x = x + 0.5 * scipy.signal.lfilter(b, a, x)
    noise = np.random.default_rng(7).standard_normal(t.size) * 0.02
    y = gain * x + gain * noise
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)
