"""Notes -> expressive f0 and loudness curves (portamento between notes, vibrato that fades
in, attack and release), for synthesis without input audio."""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mido
import numpy as np

from ..dsp.core import SILENCE_DB
from ..features.frames import Features
from ..features.loudness import shifted_loudness
from ..limits import MAX_SECONDS, MIDI_RANGE

if TYPE_CHECKING:
    from ..models.model import Model


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


# Four chords in D major (D, G over D, A, D), three or four notes each, the top voice moving
# over held lower notes: what `demo` plays through the voice engine (polyphony).
DEMO_CHORDS: tuple[Note, ...] = tuple(
    Note(m, t, d, v) for m, t, d, v in [
        (62, 0.0, 3.9, 0.7), (66, 0.0, 1.9, 0.7), (69, 0.0, 0.95, 0.8), (74, 1.0, 0.9, 0.8),
        (67, 2.0, 1.9, 0.7), (71, 2.0, 0.95, 0.8), (76, 3.0, 0.9, 0.8),
        (61, 4.0, 1.9, 0.7), (64, 4.0, 1.9, 0.7), (69, 4.0, 0.95, 0.8), (73, 5.0, 0.9, 0.8),
        (62, 6.0, 2.0, 0.7), (66, 6.0, 2.0, 0.7), (69, 6.0, 2.0, 0.7), (74, 6.0, 2.0, 0.9),
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


@dataclass(frozen=True)
class NoteEvent:
    """``kind``: "on" (``value``: velocity 0..1; ``detune``: semitones from the key ``note``,
    for a score's microtones), "off", "bend" (``value``: semitones) or "sustain" (``value``
    >= 0.5: pedal down). ``time_s``: when it happens."""

    time_s: float
    kind: str
    channel: int = 0
    note: int = 0
    value: float = 0.0
    detune: float = 0.0


def note_events(notes: list[Note] | tuple[Note, ...]) -> list[NoteEvent]:
    """A score's notes as note-on/off events, in time order (a fractional MIDI note plays its
    nearest key, detuned by the rest)."""
    events = []
    for n in notes:
        key = round(n.midi)
        events += [NoteEvent(n.start_s, "on", 0, key, n.velocity, n.midi - key),
                   NoteEvent(n.start_s + n.duration_s, "off", 0, key)]
    return sorted(events, key=lambda e: e.time_s)


FULL_VELOCITY_QUANTILE = 0.9  # of the training set's loudness: where velocity 1.0 plays


def score_loudness(loudness_db: np.ndarray, model: Model) -> np.ndarray:
    """A score's loudness (velocity 1.0 at -20 dB, silence at -80 dB) placed in the model's
    training range: full velocity at the training set's 90th loudness percentile, softer notes
    as many dB below it as before, silence left at -80 dB. Without training statistics (an
    untrained preset) the score's loudness is kept."""
    q = (model.stats.get("loudness_db") or {}).get("quantiles")
    if not q:
        return loudness_db
    top = float(np.interp(FULL_VELOCITY_QUANTILE, np.linspace(0.0, 1.0, len(q)), q))
    return shifted_loudness(loudness_db, top + 20.0).astype(np.float32)


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


BEND_RANGE = 2.0  # semitones at full pitch-wheel deflection (the General MIDI default)


@dataclass
class Track:
    """One part of a score: its name (the MIDI track's name, else ``trackN``) and events."""

    name: str
    events: list[NoteEvent]


def read_midi_tracks(path: str, bend_range: float = BEND_RANGE) -> list[Track]:
    """The parts of a MIDI file that have notes, as timed events (tempo changes honoured;
    pitch bend in semitones of ``bend_range`` at full deflection; sustain pedal = CC 64). A
    type 0 file (one track) is split by channel."""
    mid = mido.MidiFile(path)
    if mid.type == 2:
        raise ValueError("MIDI type 2 (independent sequences) is not supported")
    seconds = _tempo_map(mid)
    tracks = []
    for i, track in enumerate(mid.tracks, 1):
        parts: dict[int, list[NoteEvent]] = {}
        name, tick = f"track{i}", 0
        for msg in track:
            tick += msg.time
            if msg.type == "track_name" and msg.name.strip():
                name = msg.name.strip()
            elif (e := midi_event(msg, seconds(tick), bend_range)) is not None:
                parts.setdefault(e.channel if mid.type == 0 else 0, []).append(e)
        for channel, events in sorted(parts.items()):
            if any(e.kind == "on" for e in events):
                label = f"channel{channel + 1}" if mid.type == 0 and len(parts) > 1 else name
                tracks.append(Track(label, sorted(events, key=lambda e: e.time_s)))
    if not tracks:
        raise ValueError("the MIDI file has no notes")
    return tracks


def midi_event(msg: mido.Message, t: float, bend_range: float = BEND_RANGE) -> NoteEvent | None:
    """A MIDI message at time ``t`` as a note event (None: not one the voices play)."""
    if msg.type == "note_on" and msg.velocity > 0:
        return NoteEvent(t, "on", msg.channel, msg.note, msg.velocity / 127)
    if msg.type in ("note_on", "note_off"):
        return NoteEvent(t, "off", msg.channel, msg.note)
    if msg.type == "pitchwheel":
        return NoteEvent(t, "bend", msg.channel, 0, msg.pitch / 8192 * bend_range)
    if msg.type == "control_change" and msg.control == 64:
        return NoteEvent(t, "sustain", msg.channel, 0, msg.value / 127)
    return None


def _tempo_map(mid: mido.MidiFile) -> Callable[[int], float]:
    """tick -> seconds under the file's tempo changes (from any track)."""
    changes = {0: 500000}
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes[tick] = msg.tempo
    ticks = sorted(changes)
    starts = [0.0]
    for a, b in itertools.pairwise(ticks):
        starts.append(starts[-1] + mido.tick2second(b - a, mid.ticks_per_beat, changes[a]))

    def seconds(tick: int) -> float:
        k = bisect.bisect_right(ticks, tick) - 1
        return starts[k] + mido.tick2second(tick - ticks[k], mid.ticks_per_beat,
                                            changes[ticks[k]])
    return seconds


def read_midi(path: str) -> list[Note]:
    """The notes of a MIDI file, all tracks together, in seconds."""
    on: dict[tuple[int, int], NoteEvent] = {}
    notes = []
    for track in read_midi_tracks(path):
        for e in track.events:
            key = (e.channel, e.note)
            if e.kind == "on":
                on[key] = e
            elif e.kind == "off" and key in on:
                start = on.pop(key)
                if e.time_s > start.time_s:
                    notes.append(Note(float(e.note), start.time_s, e.time_s - start.time_s,
                                      start.value))
    if not notes:
        raise ValueError("the MIDI file has no notes")
    return sorted(notes, key=lambda n: n.start_s)


VOICE_PHRASE = tuple(Note(m, t, d) for m, t, d in [
    (50, 0.1, 0.55), (53, 0.7, 0.55), (55, 1.3, 0.8), (57, 2.2, 0.4), (55, 2.65, 0.4),
    (53, 3.1, 1.0)])


def demo_voice(sample_rate: int = 16000) -> np.ndarray:
    """A sung "ah" phrase in a low male range: band-limited glottal sawtooth with vibrato,
    two formant resonances and breath noise. Deterministic."""
    import scipy.signal  # 0.6 s of import: only the demo voice pays it

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
