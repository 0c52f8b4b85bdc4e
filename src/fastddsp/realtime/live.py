"""`fastddsp live`: the streaming engine between a microphone and the speakers, or between two
files (the same engine, block by block; how tests and offline users drive it).

Device mode opens one full-duplex sounddevice stream at the model's rate (16 kHz), or at the
device's own rate with resampling around the engine (``RateBridge``) when the device refuses
16 kHz, and calls ``Stream.process`` from the audio callback; it counts xruns (input overflows
and output underflows that PortAudio reports) and keeps the input level for a meter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ..dsp.limiter import LimiterReport, PeakLimiter
from ..errors import UserError
from ..io import open_audio, output_format, refuse_overwrite
from ..models.model import Model
from ..pipelines.output import output_rate, write_output
from .stream import Stream


@dataclass
class BlockTimes:
    """Processing time of each block, against the block's duration."""

    block_seconds: float
    times: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.times.append(seconds)

    def summary(self) -> dict[str, float]:
        if not self.times:
            return {"blocks": 0}
        t = np.asarray(self.times) * 1e3
        return {"blocks": int(t.size), "block_ms": self.block_seconds * 1e3,
                "median_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)),
                "max_ms": float(t.max()),
                "over_budget": int((t > self.block_seconds * 1e3).sum())}


@dataclass
class FileRun:
    output: str
    seconds: float
    latency_samples: int
    timing: dict[str, float]
    limited_db: float = 0.0  # the limiter's largest gain reduction (0: nothing limited)


def stream_file(model: Model, input_path: str | Path, output_path: str | Path,
                block_size: int = 256, octave: int = 0, pitch_shift: float = 0.0,
                loudness_db: float = 0.0, seed: int = 0, keep_latency: bool = False,
                sr_out: int | None = None, tracker: str | None = None) -> FileRun:
    """Run an audio file through the streaming engine, ``block_size`` samples at a time (the
    input is mixed to mono and resampled to the model's rate as it is read). By default the
    engine's latency is compensated, so the output lines up with the input and has its
    length; ``keep_latency`` writes what a listener would hear live. The output is written as
    every offline output is (``pipelines.output``: a 5 ms fade-in, the peak limiter) at
    ``sr_out`` (default: the input's rate). Memory stays bounded for any length; the output
    appears only when complete."""
    src, dst = Path(input_path), Path(output_path)
    refuse_overwrite(dst, src)
    output_format(dst)
    stream = Stream(model, block_size, octave, pitch_shift, loudness_db, seed, tracker)
    rate = model.sample_rate
    times = BlockTimes(block_size / rate)
    with open_audio(src) as f:
        if f.frames == 0:
            raise UserError(f"{src} is empty")
        out_rate = sr_out or output_rate(f.samplerate, rate)
        blocks = _streamed(f, stream, block_size, 0 if keep_latency else stream.latency, times)
        written = write_output(dst, blocks, rate, out_rate)  # fade-in, limiter, atomic write
    return FileRun(str(dst), written.samples / out_rate, stream.latency, times.summary(),
                   written.limited_db)


def _streamed(f: sf.SoundFile, stream: Stream, block_size: int, skip: int,
              times: BlockTimes) -> Iterator[np.ndarray]:
    """The stream's output for the file, block by block, its first ``skip`` samples dropped;
    then as many samples of silence in as the latency pushes out what the engine still holds."""
    resampler = soxr.ResampleStream(f.samplerate, stream.sample_rate, 1, dtype="float32",
                                    quality="HQ")

    def process(block: np.ndarray) -> np.ndarray:
        nonlocal skip
        t0 = time.perf_counter()
        y = stream.process(block)
        times.add(time.perf_counter() - t0)
        cut = min(skip, y.size)
        skip -= cut
        return y[cut:]

    pending = np.zeros(0, np.float32)
    while True:
        piece = f.read(65536, dtype="float32", always_2d=True)
        last = piece.shape[0] == 0
        if not last and not np.all(np.isfinite(piece)):
            raise UserError(f"{f.name} contains NaN or infinite samples")
        mono = piece.mean(1) if piece.shape[0] else np.zeros(0, np.float32)
        pending = np.concatenate([pending, resampler.resample_chunk(mono, last=last)])
        while pending.size >= block_size:
            yield process(pending[:block_size])
            pending = pending[block_size:]
        if last:
            break
    if pending.size:
        yield process(pending)
    left = stream.latency
    while left > 0:
        n = min(block_size, left)
        yield process(np.zeros(n, np.float32))
        left -= n


class RateBridge:
    """Runs the engine at a device's sample rate: each device block is resampled to the
    model's rate, processed and resampled back (soxr's streaming resamplers in their "quick"
    cubic mode: about 7 samples of delay, where the filtered modes hold back tens of ms), and
    exactly as many samples as came in are handed out from a small FIFO primed with zeros."""

    PRIME = 32  # device samples: covers the resamplers' delay and uneven chunk sizes

    def __init__(self, process: Callable[[np.ndarray], np.ndarray], device_rate: int,
                 model_rate: int):

        self.process = process
        self.to_model = soxr.ResampleStream(device_rate, model_rate, 1, dtype="float32",
                                            quality="QQ")
        self.to_device = soxr.ResampleStream(model_rate, device_rate, 1, dtype="float32",
                                             quality="QQ")
        self.fifo = np.zeros(self.PRIME, np.float32)
        self.underruns = 0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        y = self.process(self.to_model.resample_chunk(block))
        self.fifo = np.concatenate([self.fifo, self.to_device.resample_chunk(y)])
        if self.fifo.size < block.size:
            self.underruns += 1
            self.fifo = np.concatenate([self.fifo, np.zeros(block.size - self.fifo.size,
                                                            np.float32)])
        out, self.fifo = self.fifo[: block.size], self.fifo[block.size:]
        return out


@dataclass
class LiveState:
    level_db: float = -120.0
    xruns: int = 0
    blocks: int = 0
    error: str = ""
    timing: BlockTimes | None = None
    device_rate: int = 0
    bridge: RateBridge | None = None
    limiter: LimiterReport = field(default_factory=LimiterReport)


def sounddevice_module() -> Any:
    try:
        import sounddevice
    except OSError as e:  # the wheel is there but the PortAudio library is not
        raise UserError(f"live audio needs the PortAudio library ({e}); on Debian/Ubuntu: "
                        "apt install libportaudio2") from None
    except ImportError:
        raise UserError("live audio devices need the [live] extra: "
                        "pip install 'fastddsp[live]'") from None
    return sounddevice


def list_devices() -> str:
    return str(sounddevice_module().query_devices())


def run_live(stream: Stream, input_device: str | int | None = None,
             output_device: str | int | None = None, seconds: float | None = None,
             report: Callable[[LiveState], None] | None = None) -> LiveState:
    """Microphone -> ``stream`` (a model's streaming engine, with its block size and
    settings) -> speakers until ``seconds`` pass or Ctrl-C. ``report`` is called about ten
    times a second with the input level, xrun count and block timings."""
    return run_device(stream.process, stream.sample_rate, stream.block_size, input_device,
                      output_device, seconds, report)


def run_device(engine: Callable[[np.ndarray], np.ndarray], rate: int, block_size: int,
               input_device: str | int | None = None, output_device: str | int | None = None,
               seconds: float | None = None, report: Callable[[LiveState], None] | None = None,
               listen: bool = True) -> LiveState:
    """``engine`` (input block -> as many output samples, at ``rate``) between the audio
    devices; ``listen=False``: no input device, the engine gets blocks of zeros (a MIDI
    instrument) and the meter shows the output's level."""
    sd = sounddevice_module()
    state = LiveState(timing=BlockTimes(block_size / rate))
    lock = threading.Lock()
    process: Callable[[np.ndarray], np.ndarray] = engine
    # no look-ahead: the gain falls on a peak's own sample, so the speakers get no delay
    limiter = PeakLimiter(rate, lookahead_s=0.0, report=state.limiter)

    def callback(indata: np.ndarray, outdata: np.ndarray, frames: int, _time: Any,
                 status: Any) -> None:
        t0 = time.perf_counter()
        try:
            x = indata[:, 0].astype(np.float32, copy=False)
            y = limiter.process(process(np.nan_to_num(x)))  # never clips, adds no latency
            outdata[:, 0] = np.clip(y, -1.0, 1.0)
            if outdata.shape[1] > 1:
                outdata[:, 1:] = outdata[:, :1]
        except Exception as e:  # never raise into PortAudio's thread; stop cleanly instead
            outdata.fill(0)
            with lock:
                state.error = f"{type(e).__name__}: {e}".splitlines()[0]
            raise sd.CallbackAbort from None
        heard = indata if listen else outdata
        peak = float(np.max(np.abs(heard))) if heard.size else 0.0
        with lock:
            state.level_db = 20 * np.log10(max(peak, 1e-6))
            state.blocks += 1
            if status and (getattr(status, "input_overflow", False)
                           or getattr(status, "output_underflow", False)):
                state.xruns += 1
            assert state.timing is not None
            state.timing.add(time.perf_counter() - t0)

    def open_stream(rate: int, block: int) -> Any:
        if listen:
            return sd.Stream(samplerate=rate, blocksize=block,
                             device=(input_device, output_device), channels=(1, 1),
                             dtype="float32", latency="low", callback=callback)
        silence = np.zeros((block, 1), np.float32)

        def play(outdata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            zeros = silence if frames == block else np.zeros((frames, 1), np.float32)
            callback(zeros, outdata, frames, when, status)
        return sd.OutputStream(samplerate=rate, blocksize=block, device=output_device,
                               channels=1, dtype="float32", latency="low", callback=play)

    try:
        audio = open_stream(rate, block_size)
        state.device_rate = rate
    except Exception as first:
        # Many devices run only at 44.1/48 kHz: run there and resample around the engine.
        try:
            info = sd.query_devices(output_device, "output")
            device_rate = int(info["default_samplerate"])
            bridge = RateBridge(engine, device_rate, rate)
            process = bridge
            limiter = PeakLimiter(device_rate, lookahead_s=0.0, report=state.limiter)
            audio = open_stream(device_rate, round(block_size * device_rate / rate))
            state.device_rate = device_rate
            state.bridge = bridge
        except Exception:
            message = str(first).splitlines()[0] if str(first) else type(first).__name__
            raise UserError(f"cannot open the audio devices: {message}") from None
    _wait(audio, state, lock, seconds, report)
    if state.error:
        raise UserError(f"live processing stopped: {state.error}")
    return state


def _wait(audio: Any, state: LiveState, lock: threading.Lock, seconds: float | None,
          report: Callable[[LiveState], None] | None) -> None:
    """Runs the open device stream until ``seconds`` pass, it stops, or Ctrl-C."""
    start = time.monotonic()
    with audio:
        try:
            while audio.active and (seconds is None or time.monotonic() - start < seconds):
                time.sleep(0.1)
                if report is not None:
                    with lock:
                        report(state)
        except KeyboardInterrupt:
            pass


def meter(level_db: float, width: int = 30) -> str:
    """A text level meter from -60 to 0 dBFS."""
    filled = round(width * min(1.0, max(0.0, (level_db + 60.0) / 60.0)))
    return "#" * filled + "-" * (width - filled)

