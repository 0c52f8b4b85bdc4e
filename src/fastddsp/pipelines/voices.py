"""Polyphony: note events -> voices -> one room.

``Voices`` turns note events (note on/off, pitch bend, sustain pedal) into the f0 and loudness
curves of a fixed pool of voices, frame by frame: a note-on takes a voice (the same note
again retriggers its voice; else a free voice, the one free longest; else, at the cap, the
voice released longest ago, or the oldest held one), a note-off releases it (the pedal holds
it until the pedal lifts). A voice's loudness follows its note's envelope (attack from the
level the voice had, so a stolen voice glides to its new note instead of jumping; release to
silence), its pitch the note, a vibrato that grows in, and its channel's pitch bend. Curves
are computed in closed form from the events, so any split into blocks gives the same frames.

``VoiceEngine`` plays the pool through one model: every voice its own decoder state,
oscillator phase and noise stream (the stepped chain, ``models.chain.ChainStep``, with the
voices as its batch), their dry sounds summed into one reverb (the room). Offline ``render``
runs it in long blocks, the real-time MIDI stream (``realtime.poly``) hop by hop: the same
frames, so the same audio (tested).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from ..dsp.core import SILENCE_DB
from ..errors import UserError
from ..limits import MAX_VOICES, check_voices
from ..models.chain import ChainStep, model_stepper
from ..models.model import Model
from .score import RELEASE_S, TAIL_S, NoteEvent, score_loudness

ATTACK_S = 0.05         # as notes_to_features: to full level
VIBRATO_HZ = 5.5
VIBRATO_SEMITONES = 0.25
VIBRATO_DELAY_S = 0.2   # the vibrato grows in from here over VIBRATO_GROW_S
VIBRATO_GROW_S = 0.3


class Voices:
    """The control curves of ``count`` voices from note events (see the module docs)."""

    def __init__(self, count: int, frame_rate: float):
        check_voices(count)
        self.count, self.rate = count, float(frame_rate)
        self.note = np.full(count, 69.0)
        self.channel = np.zeros(count, np.int64)
        self.velocity = np.zeros(count)
        self.on = np.full(count, -np.inf)       # the frame the note began
        self.off = np.full(count, -np.inf)      # the frame it was released (inf: held)
        self.start_gain = np.zeros(count)       # the level its attack starts from
        self.release_gain = np.zeros(count)     # the level its release starts from
        self.held_by_pedal = np.zeros(count, bool)
        self.rest = np.full(count, np.nan)        # an idle voice's pitch (Hz; NaN: sounding)
        self.detune = np.zeros(count)             # semitones off the key (a score's microtones)
        self.bend = np.zeros(16)                # semitones, per channel
        self.pedal = np.zeros(16, bool)
        self.release_frames = RELEASE_S * self.rate

    # --- the curves, in closed form ---
    def gain(self, frames: np.ndarray, voices: slice | list[int] = slice(None)) -> np.ndarray:
        """Each voice's (or these ``voices``') level (0..1) at ``frames``: ``[count, n]``."""
        t = np.asarray(frames, np.float64)[None, :]
        start, velocity = self.start_gain[voices, None], self.velocity[voices, None]
        with np.errstate(invalid="ignore"):
            since = (t - self.on[voices, None]) / self.rate
            attack = start + (velocity - start) * np.clip(since / ATTACK_S, 0.0, 1.0)
            released = (t - self.off[voices, None]) / self.release_frames
            release = self.release_gain[voices, None] * np.clip(1.0 - released, 0.0, 1.0)
        return np.where(released < 0, attack, release)

    def f0(self, frames: np.ndarray) -> np.ndarray:
        """Each voice's pitch in Hz at ``frames`` (called in time order): its note, vibrato
        and channel bend; once a voice is idle its pitch rests where it was when it fell
        silent (vibrato and later bends no longer move it), so an idle voice's decoder sees
        constant input (``VoiceEngine`` then skips it)."""
        t = np.asarray(frames, np.float64)[None, :]
        since = np.where(np.isfinite(self.on)[:, None], (t - self.on[:, None]) / self.rate, 0.0)
        depth = np.clip((since - VIBRATO_DELAY_S) / VIBRATO_GROW_S, 0.0, 1.0)
        vibrato = depth * VIBRATO_SEMITONES * np.sin(2 * math.pi * VIBRATO_HZ * since)
        midi = (self.note + self.detune + self.bend[self.channel])[:, None] + vibrato
        hz = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
        idle = t >= (self.off + self.release_frames)[:, None]
        start = idle.any(1) & np.isnan(self.rest)
        self.rest[start] = hz[start, np.argmax(idle[start], 1)]
        return np.where(idle, self.rest[:, None], hz)

    def idle(self, frame: float) -> np.ndarray:
        """Voices with no note: released and silent by ``frame`` (or never used)."""
        return frame >= self.off + self.release_frames

    def busy(self, frame: float) -> int:
        return int((~self.idle(frame)).sum())

    def _level(self, v: int, frame: float) -> float:
        level = float(self.gain(np.array([frame]), [v])[0, 0])
        return level if math.isfinite(level) else 0.0

    # --- events ---
    def apply(self, e: NoteEvent, frame: float) -> None:
        c = int(e.channel) & 15
        if e.kind == "on":
            self._note_on(frame, c, int(e.note), float(e.value), float(e.detune))
        elif e.kind == "off":
            held = (self.note == e.note) & (self.channel == c) & (self.off == np.inf)
            for v in np.flatnonzero(held & ~self.held_by_pedal):
                if self.pedal[c]:
                    self.held_by_pedal[v] = True
                else:
                    self._release(int(v), frame)
        elif e.kind == "bend":
            self.bend[c] = float(e.value)
        elif e.kind == "sustain":
            self.pedal[c] = e.value >= 0.5
            if not self.pedal[c]:
                for v in np.flatnonzero(self.held_by_pedal & (self.channel == c)):
                    self._release(int(v), frame)

    def _release(self, v: int, frame: float) -> None:
        self.release_gain[v] = self._level(v, frame)
        self.off[v] = frame
        self.held_by_pedal[v] = False

    def _note_on(self, frame: float, channel: int, note: int, velocity: float,
                 detune: float = 0.0) -> None:
        v = self._choose(frame, channel, note)
        self.start_gain[v] = self._level(v, frame)
        self.note[v], self.channel[v], self.velocity[v] = note, channel, velocity
        self.detune[v] = detune
        self.on[v], self.off[v], self.held_by_pedal[v] = frame, np.inf, False
        self.rest[v] = np.nan

    def _choose(self, frame: float, channel: int, note: int) -> int:
        same = np.flatnonzero((self.note == note) & (self.channel == channel)
                              & ~self.idle(frame))
        if same.size:                                   # the same note again: its voice
            return int(same[0])
        idle = np.flatnonzero(self.idle(frame))
        if idle.size:                                   # the voice free longest
            return int(idle[np.argmin(self.off[idle])])
        released = np.flatnonzero(self.off <= frame)
        if released.size:                               # stolen: released longest ago
            return int(released[np.argmin(self.off[released])])
        return int(np.argmin(self.on))                  # stolen: the oldest held note


def needed_voices(events: list[NoteEvent], frame_rate: float, cap: int = MAX_VOICES) -> int:
    """How many voices play ``events`` without stealing (at most ``cap``)."""
    pool = Voices(MAX_VOICES, frame_rate)
    most = 1
    for e in events:
        frame = round(e.time_s * frame_rate)
        pool.apply(e, frame)
        if e.kind == "on":
            most = max(most, pool.busy(frame))
    return min(most, cap)


def _end_frame(events: list[NoteEvent], frame_rate: float) -> int:
    """The frame after which every voice is silent: the last event, a release, the tail."""
    last = max((e.time_s for e in events), default=0.0)
    return math.ceil((last + RELEASE_S + TAIL_S) * frame_rate) + 1


def tracks_seconds(tracks: list[list[NoteEvent]], frame_rate: float) -> float:
    """How long ``render_tracks`` renders these tracks' events at ``frame_rate``."""
    return max(_end_frame(ev, frame_rate) for ev in tracks) / frame_rate


class VoiceEngine:
    """``voices`` voices of ``model`` in one room, rendered frame block by frame block from
    scheduled events (see the module docs). ``partition_frames``: the reverb's partition (every
    call renders a multiple of it, but a sequence's last); the output runs ``delay`` samples
    behind the controls."""

    def __init__(self, model: Model, voices: int, seed: int = 0, partition_frames: int = 1):
        self.model = model.eval()
        self.pool = Voices(voices, model.frame_rate)
        self.hop = model.config.hop_size
        with torch.inference_mode():
            self.chain = ChainStep(model, seed, partition_frames, model_stepper(model))
        self.delay = (1 + self.chain.look) * self.hop
        self.nyquist = model.sample_rate / 2.0
        # a decoder in ONNX Runtime decodes only the frames that sound (ChainStep.sparse);
        # else a CNN's state is a window of its past inputs: constant input over a window
        # leaves it unchanged, so a voice idle that long may skip the decoder (a GRU's state
        # only converges: its voices always run)
        past, look = getattr(model.decoder, "receptive_field", (-1, 0))
        self.still_window = past + look + 1 if past >= 0 else -1
        self.reset()

    def reset(self) -> None:
        """Silence, no events, back at frame 0."""
        self.pool = Voices(self.pool.count, self.pool.rate)
        with torch.inference_mode():
            self.state = self.chain.initial_state(self.pool.count, mix=True)
        self.frame = 0                      # the next frame to render
        self.pending: list[tuple[int, int, NoteEvent]] = []   # a heap: (frame, order, event)
        self.order = itertools.count()      # events of one frame keep their order
        self.still_since = np.full(self.pool.count, np.inf)  # constant decoder input since
        self.still_f0 = np.full(self.pool.count, np.nan)

    def schedule(self, events: Iterable[NoteEvent], now: bool = False) -> None:
        """Events at their times (``now``: at the next frame to render, as live input)."""
        for e in events:
            frame = self.frame if now else max(self.frame, round(e.time_s * self.pool.rate))
            heapq.heappush(self.pending, (frame, next(self.order), e))

    def controls(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The voices' f0 and loudness (in the model's range) for the next ``n`` frames,
        applying the scheduled events at their frames."""
        a, b = self.frame, self.frame + n
        f0, gain = np.zeros((self.pool.count, n)), np.zeros((self.pool.count, n))
        cut = a
        while cut < b:
            while self.pending and self.pending[0][0] <= cut:
                frame, _, e = heapq.heappop(self.pending)
                self.pool.apply(e, frame)
            nxt = min(b, self.pending[0][0]) if self.pending else b
            frames = np.arange(cut, nxt)
            f0[:, cut - a: nxt - a] = self.pool.f0(frames)
            gain[:, cut - a: nxt - a] = self.pool.gain(frames)
            cut = nxt
        self.frame = b
        loud = np.where(gain > 1e-4, 20 * np.log10(np.maximum(gain, 1e-4)) - 20, SILENCE_DB)
        return (np.clip(f0, 0.0, self.nyquist).astype(np.float32),
                score_loudness(loud.astype(np.float32), self.model))

    def render(self, n: int) -> np.ndarray:
        """The room's audio for the next ``n`` frames: ``n * hop`` float32 samples."""
        f0, loud = self.controls(n)
        start = self.frame - n
        skip = None if self.chain.sparse else self._still(f0, loud, start)
        chain, n_dec = self.chain, self.chain.n_decoder_states
        with torch.inference_mode():
            f0_t, loud_t, at = torch.from_numpy(f0), torch.from_numpy(loud), torch.tensor([start])
            dec, synth = self.state[:n_dec], self.state[n_dec:]
            if skip is None:  # only the frames that sound are decoded
                f0_q, harm, noise, dec = chain.sparse_controls(f0_t, loud_t, at, dec)
            elif skip.any():  # idle voices: no sound, and their decoder state stays as it is
                rows = torch.from_numpy(np.flatnonzero(~skip))
                harm = torch.zeros(self.pool.count, n, chain.k)
                noise = torch.zeros(self.pool.count, n, chain.noise_delay + 1)
                f0_q = f0_t.clone()  # (constant where skipped: the delayed f0 is the same)
                if rows.numel():
                    f0_r, harm_r, noise_r, new = chain.controls(
                        f0_t[rows], loud_t[rows], at, [x[rows] for x in dec])
                    f0_q[rows], harm[rows], noise[rows] = f0_r, harm_r, noise_r
                    dec = [x.index_copy(0, rows, y) for x, y in zip(dec, new, strict=True)]
            else:
                f0_q, harm, noise, dec = chain.controls(f0_t, loud_t, at, dec)
            out, synth = chain.synth(f0_q, harm, noise, at - chain.look, synth, mix=True)
            self.state = dec + synth
        return out[0].numpy()

    def _still(self, f0: np.ndarray, loud: np.ndarray, start: int) -> np.ndarray:
        """Which voices may skip the decoder in frames ``[start, start + n)``: silent, with
        constant pitch, over the whole call and the decoder's window before it."""
        n = f0.shape[1]
        still = (loud <= SILENCE_DB) & (f0 == f0[:, -1:])
        moving = ~still
        last_moving = np.where(moving.any(1), n - 1 - np.argmax(moving[:, ::-1], 1), -1)
        whole = ~moving.any(1) & (f0[:, -1] == self.still_f0)
        skip = whole & (start - self.still_window >= self.still_since)
        self.still_since = np.where(whole, self.still_since, start + last_moving + 1.0)
        self.still_f0 = f0[:, -1].copy()
        if self.still_window < 0:
            return np.zeros_like(skip)
        return skip


BLOCK_FRAMES = 2000  # offline: 8 s at 250 frames/s, whole 250-frame reverb partitions


def render_tracks(tracks: list[tuple[list[NoteEvent], Model]], voices: int | None = None,
                  seed: int = 0, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Every track's events through its model's voices (as many as the track needs without
    stealing, at most ``voices``), mixed: mono float32 chunks of the models' rate, in memory
    bounded by a block, through the end of the last release and the tail."""
    if not tracks:
        raise UserError("nothing to render: no track has notes")
    rates = {(m.sample_rate, m.config.hop_size) for _, m in tracks}
    if len(rates) > 1:
        raise UserError("the tracks' models differ in sample rate or frame rate; render them "
                        "separately")
    model0 = tracks[0][1]
    engines = []
    for events, model in tracks:
        need = needed_voices(events, model.frame_rate, voices or MAX_VOICES)
        engine = VoiceEngine(model, need, seed, model.synth.partition_frames())
        engine.schedule(events)
        engines.append(engine)
    total = round(tracks_seconds([ev for ev, _ in tracks], model0.frame_rate)
                  * model0.sample_rate)
    yield from _mix(engines, total, block_frames)


def _mix(engines: list[VoiceEngine], total: int, block_frames: int) -> Iterator[np.ndarray]:
    buffers = [np.zeros(0, np.float32) for _ in engines]
    skip = [e.delay for e in engines]
    blocks = []
    for e in engines:  # whole partitions, no more than a short score needs
        part = e.model.synth.partition_frames()
        need = -(-(total + e.delay) // (e.hop * part))
        blocks.append(part * min(max(1, round(block_frames / part)), need))
    done = 0
    while done < total:
        for i, engine in enumerate(engines):
            while buffers[i].size < min(block_frames * engine.hop, total - done):
                out = engine.render(blocks[i])
                drop = min(skip[i], out.size)
                skip[i] -= drop
                buffers[i] = np.concatenate([buffers[i], out[drop:]])
        take = min(min(b.size for b in buffers), total - done, block_frames * engines[0].hop)
        yield sum(b[:take] for b in buffers).astype(np.float32)
        buffers = [b[take:] for b in buffers]
        done += take
