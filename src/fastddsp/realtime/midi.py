"""`fastddsp live --midi`: a MIDI keyboard plays a model through the voice engine
(``realtime.poly``) in real time; ``--midi-file`` drives the same engine from a MIDI file,
block by block, to the speakers or to a file (how tests and hosts without a keyboard use it).

Keyboard messages arrive on mido's thread and wait in a queue; the audio callback hands them
to the engine before each block, so a note-on sounds at the next frame boundary (see
``realtime.poly`` for the latency). Note on/off with velocity, pitch bend and the sustain
pedal (CC 64) are played; other messages are ignored.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mido
import numpy as np

from ..errors import UserError
from ..io import output_format, refuse_overwrite
from ..limits import check_block_size
from ..models.model import Model
from ..pipelines.output import write_output
from ..pipelines.render import read_score_tracks
from ..pipelines.score import BEND_RANGE, NoteEvent, midi_event
from ..pipelines.voices import needed_voices, tracks_seconds
from .live import BlockTimes, FileRun, LiveState, run_device
from .poly import DEFAULT_VOICES, PolyStream


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """ALSA prints its own complaints to the process's stderr: hide them (a UserError says
    what went wrong in one line)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _mido() -> Any:
    try:
        import rtmidi  # noqa: F401
    except ImportError:
        raise UserError("a MIDI keyboard needs the [live] extra: pip install 'fastddsp[live]'"
                        ) from None
    mido.set_backend("mido.backends.rtmidi")
    return mido


def midi_ports() -> list[str]:
    """The MIDI input ports (a one-line UserError when there is no MIDI system)."""
    mido = _mido()
    try:
        with _quiet_stderr():
            return list(mido.get_input_names())
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"no MIDI system here: {reason}") from None


def midi_port(name: str = "") -> str:
    """The MIDI input port called ``name`` ("": the first one), or a one-line UserError."""
    ports = midi_ports()
    if not ports:
        raise UserError("no MIDI input port: connect a keyboard, or play a file with "
                        "--midi-file")
    if name and name not in ports:
        raise UserError(f"no MIDI input port {name!r}; there are: {', '.join(ports)}")
    return name or ports[0]


def open_keyboard(name: str, callback: Callable[[Any], None]) -> Any:
    """Opens the MIDI input ``name`` ("" for the first one) with ``callback`` per message."""
    port = midi_port(name)
    try:
        with _quiet_stderr():
            return _mido().open_input(port, callback=callback)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"cannot open MIDI port {port!r}: {reason}") from None


class KeyboardQueue:
    """MIDI messages from the port's thread -> events for the engine's thread."""

    def __init__(self, poly: PolyStream, bend_range: float = BEND_RANGE):
        self.poly, self.bend_range = poly, bend_range
        self.queue: collections.deque[NoteEvent] = collections.deque()
        self.received = 0

    def __call__(self, message: Any) -> None:  # on mido's thread
        event = midi_event(message, 0.0, self.bend_range)
        if event is not None:
            self.queue.append(event)
            self.received += 1

    def play(self, block: np.ndarray) -> np.ndarray:  # on the audio thread
        while self.queue:
            self.poly.send(self.queue.popleft())
        return self.poly.play(block.size)


def run_keyboard(model: Model, port: str = "", voices: int = DEFAULT_VOICES,
                 block_size: int = 256, output_device: str | int | None = None,
                 seconds: float | None = None, bend_range: float = BEND_RANGE,
                 report: Callable[[LiveState], None] | None = None) -> LiveState:
    """A MIDI keyboard -> ``voices`` voices of ``model`` -> the speakers, until ``seconds``
    pass or Ctrl-C."""
    poly = PolyStream(model, voices)
    keys = KeyboardQueue(poly, bend_range)
    port_handle = open_keyboard(port, keys)
    try:
        return run_device(keys.play, model.sample_rate, block_size, None, output_device,
                          seconds, report, listen=False)
    finally:
        port_handle.close()


def file_events(path: str | Path, bend_range: float = BEND_RANGE) -> list[NoteEvent]:
    """Every track of a MIDI file or text score, merged into one part (one instrument)."""
    tracks = read_score_tracks(path, bend_range)
    return sorted((e for t in tracks for e in t.events), key=lambda e: e.time_s)


def midi_file_stream(model: Model, events: list[NoteEvent], voices: int | None = None,
                     seed: int = 0) -> tuple[PolyStream, int]:
    """A voice engine with ``events`` scheduled (as many voices as they need without
    stealing, at most ``voices``) and how many samples the score lasts."""
    need = needed_voices(events, model.frame_rate, voices or DEFAULT_VOICES)
    poly = PolyStream(model, need, seed)
    poly.schedule(events)
    return poly, round(tracks_seconds([events], model.frame_rate) * model.sample_rate)


def play_midi_file(model: Model, path: str | Path, output_path: str | Path,
                   block_size: int = 256, voices: int | None = None,
                   bend_range: float = BEND_RANGE, seed: int = 0, keep_latency: bool = False,
                   sr_out: int | None = None) -> FileRun:
    """A MIDI file through the real-time voice engine, ``block_size`` samples at a time, to
    an audio file (latency compensated unless ``keep_latency``): the same samples as offline
    ``render`` of the file's tracks merged into one part."""
    src, dst = Path(path), Path(output_path)
    refuse_overwrite(dst, src)
    output_format(dst)
    check_block_size(block_size)
    poly, total = midi_file_stream(model, file_events(src, bend_range), voices, seed)
    times = BlockTimes(block_size / model.sample_rate)
    skip = 0 if keep_latency else poly.latency

    def blocks() -> Iterator[np.ndarray]:
        left, drop = total + poly.latency, skip
        while left > 0:
            t0 = time.perf_counter()
            y = poly.play(min(block_size, left))
            times.add(time.perf_counter() - t0)
            left -= y.size
            cut = min(drop, y.size)
            drop -= cut
            yield y[cut:]
    rate = sr_out or model.sample_rate
    written = write_output(dst, blocks(), model.sample_rate, rate)
    return FileRun(str(dst), written.samples / rate, poly.latency, times.summary(),
                   written.limited_db)


def play_midi_file_live(model: Model, path: str | Path, block_size: int = 256,
                        voices: int | None = None, output_device: str | int | None = None,
                        bend_range: float = BEND_RANGE, seed: int = 0,
                        report: Callable[[LiveState], None] | None = None) -> LiveState:
    """A MIDI file through the real-time voice engine to the speakers."""
    poly, total = midi_file_stream(model, file_events(path, bend_range), voices, seed)
    seconds = (total + poly.latency) / model.sample_rate + 0.2
    return run_device(lambda block: poly.play(block.size), model.sample_rate, block_size,
                      None, output_device, seconds, report, listen=False)
