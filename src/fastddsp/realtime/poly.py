"""A polyphonic instrument in real time: note events in, audio blocks out.

``PolyStream(model, voices)`` holds a ``pipelines.voices.VoiceEngine`` whose reverb runs in
partitions of one hop, so it renders any number of frames per call. Events from a keyboard
(``note_on``, ``note_off``, ``bend``, ``sustain``) take effect at the next frame to render;
events with times (``schedule``, a MIDI file played through the engine) at their own frame,
which is what offline ``render`` does: the stream's output equals the offline rendering,
``latency`` samples later (tested for any block size).

Latency, note-on to sound: a frame's audio leaves ``(1 + lookahead) * hop`` samples after the
frame (the chain's delay), and an event waits for the next frame boundary, less than one hop
(audio already rendered ahead): below ``(2 + lookahead) * hop`` samples, plus the host's
block. violin-tiny: under 128 samples, 8 ms at 16 kHz.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..models.model import Model
from ..pipelines.score import NoteEvent
from ..pipelines.voices import VoiceEngine

DEFAULT_VOICES = 32


class PolyStream:
    """``voices`` voices of ``model``, block by block (see the module docs)."""

    def __init__(self, model: Model, voices: int = DEFAULT_VOICES, seed: int = 0):
        self.engine = VoiceEngine(model, voices, seed, partition_frames=1)
        self.sample_rate = model.sample_rate
        self.hop = model.config.hop_size
        self.ahead = np.zeros(0, np.float32)   # rendered, not yet played
        for v in range(voices):  # warm up (a first call allocates), then start afresh
            self.note_on(60 + v % 24, 0.8, v // 24)
        for _ in range(4):
            self.engine.render(4)
        self.engine.reset()

    @property
    def latency(self) -> int:
        """The chain's delay in samples: a scheduled event's frame leaves this much later."""
        return self.engine.delay

    @property
    def max_note_latency(self) -> int:
        """The longest note-on to sound delay of a live event, in samples (module docs)."""
        return self.engine.delay + self.hop - 1

    def schedule(self, events: list[NoteEvent]) -> None:
        """Timed events (``time_s`` from the stream's start)."""
        self.engine.schedule(events)

    def send(self, event: NoteEvent) -> None:
        """A live event: at the next frame to render (its ``time_s`` is ignored)."""
        self.engine.schedule([event], now=True)

    def note_on(self, note: int, velocity: float = 0.8, channel: int = 0) -> None:
        if not 0 < velocity <= 1:
            raise UserError("velocity must be within (0, 1]")
        self.send(NoteEvent(0.0, "on", channel, int(note), float(velocity)))

    def note_off(self, note: int, channel: int = 0) -> None:
        self.send(NoteEvent(0.0, "off", channel, int(note)))

    def bend(self, semitones: float, channel: int = 0) -> None:
        self.send(NoteEvent(0.0, "bend", channel, 0, float(semitones)))

    def sustain(self, down: bool, channel: int = 0) -> None:
        self.send(NoteEvent(0.0, "sustain", channel, 0, 1.0 if down else 0.0))

    def play(self, n: int) -> np.ndarray:
        """The next ``n`` samples."""
        if self.ahead.size < n:
            frames = -(-(n - self.ahead.size) // self.hop)
            self.ahead = np.concatenate([self.ahead, self.engine.render(frames)])
        out, self.ahead = self.ahead[:n], self.ahead[n:]
        return out
