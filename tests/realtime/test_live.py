"""`fastddsp live`: file mode through the streaming engine, device mode through a stand-in
sounddevice module, bad input."""

import subprocess
import sys
import textwrap
import threading
import time
import types

import numpy as np
import pytest
import soundfile as sf

from fastddsp.cli.main import run
from fastddsp.features.pitch import track
from fastddsp.io import resample
from fastddsp.models import load
from fastddsp.realtime.live import RateBridge, run_live, stream_file
from fastddsp.realtime.stream import Stream, offline_reference
from tests.realtime.test_stream import melody

SR = 16000


def test_file_mode_is_the_stream_with_its_latency_compensated(tmp_path):
    model = load("violin-tiny")
    x = melody(2.0)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    result = stream_file(model, tmp_path / "in.wav", tmp_path / "out.wav", block_size=128,
                         loudness_db=-12.0)
    y, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    assert sr == SR and y.size == x.size
    assert result.latency_samples == 320
    ref = offline_reference(model, x, loudness_db=-12.0)
    # output sample n = stream sample n + 320 = reference sample n + 320 - 64
    n = x.size - 400
    assert np.abs(ref[256: 256 + n]).max() < 1.0      # nothing clipped in the comparison
    fade = 80  # the first 5 ms fade in, as every offline output does (no click)
    np.testing.assert_allclose(y[fade:n], ref[256 + fade: 256 + n], atol=1e-4, rtol=0)
    assert np.all(np.abs(y[:fade]) <= np.abs(ref[256: 256 + fade]) + 1e-4)
    assert result.timing["blocks"] == -(-(x.size + 320) // 128)


def test_file_mode_keeps_latency_on_request_and_resamples(tmp_path):
    x = np.repeat(melody(1.0), 3)                   # 48 kHz stereo input
    sf.write(tmp_path / "in.flac", np.stack([x, x], 1), 48000)
    assert run(["live", "--input-file", str(tmp_path / "in.flac"), "--output-file",
                str(tmp_path / "out.wav"), "--keep-latency", "--block", "64", "--sr",
                str(SR)]) == 0
    info = sf.info(tmp_path / "out.wav")
    assert info.samplerate == SR and info.frames == SR + 320
    # by default the output keeps the input's rate, as transfer's does
    assert run(["live", "--input-file", str(tmp_path / "in.flac"), "--output-file",
                str(tmp_path / "out48.wav"), "--block", "64"]) == 0
    info = sf.info(tmp_path / "out48.wav")
    assert info.samplerate == 48000 and abs(info.frames - x.size) <= 1


class _Flags:
    def __init__(self, xrun: bool):
        self.input_overflow = xrun
        self.output_underflow = False

    def __bool__(self) -> bool:
        return self.input_overflow


def fake_sounddevice(blocks: list[np.ndarray], xrun_at: set[int], captured: list[np.ndarray],
                     rates: tuple[int, ...] = (SR,), before_block=None):
    """A stand-in for sounddevice: its Stream calls the callback with the given input blocks
    from a thread, as PortAudio would, and records what the callback wrote; its OutputStream
    does the same with no input (the blocks give the count and size). It accepts only the
    sample ``rates`` given (the first is the device's default); ``before_block(i)`` runs
    before block i."""
    mod = types.ModuleType("sounddevice")

    class CallbackAbort(Exception):
        pass

    class Stream:
        def __init__(self, samplerate, blocksize, device, channels, dtype, latency, callback):
            if samplerate not in rates:
                raise RuntimeError(f"Invalid sample rate {samplerate}")
            assert dtype == "float32" and blocksize == blocks[0].size
            self.callback = callback
            self.active = False

        def call(self, block, out, flags):
            self.callback(block[:, None], out, block.size, None, flags)

        def _run(self):
            for i, block in enumerate(blocks):
                if before_block is not None:
                    before_block(i)
                out = np.zeros((block.size, 1), np.float32)
                try:
                    self.call(block, out, _Flags(i in xrun_at))
                except CallbackAbort:
                    break
                captured.append(out[:, 0].copy())
            self.active = False

        def __enter__(self):
            self.active = True
            self.thread = threading.Thread(target=self._run)
            self.thread.start()
            return self

        def __exit__(self, *exc):
            self.thread.join()

    class OutputStream(Stream):
        def __init__(self, samplerate, blocksize, device, channels, dtype, latency, callback):
            assert channels == 1
            super().__init__(samplerate, blocksize, device, channels, dtype, latency, callback)

        def call(self, block, out, flags):
            self.callback(out, block.size, None, flags)

    mod.Stream = Stream
    mod.OutputStream = OutputStream
    mod.CallbackAbort = CallbackAbort
    mod.query_devices = lambda device, kind: {"default_samplerate": float(rates[0])}
    return mod


def melody_on_a_fake_device(monkeypatch, xrun_at: set[int], size: int = 256
                            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A second of melody in ``size``-sample blocks from a fake sounddevice: the blocks, and
    the list the device's output lands in."""
    x = melody(1.0)
    blocks = [x[i: i + size] for i in range(0, x.size - size + 1, size)]
    captured: list[np.ndarray] = []
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(blocks, xrun_at, captured))
    return blocks, captured


def test_device_mode_processes_blocks_counts_xruns_and_meters(monkeypatch):
    model = load("violin-tiny")
    size = 256
    blocks, captured = melody_on_a_fake_device(monkeypatch, {3, 10, 11}, size)
    levels = []
    state = run_live(Stream(model, size), report=lambda s: levels.append(s.level_db))
    assert state.blocks == len(blocks) == len(captured)
    assert state.xruns == 3
    assert state.level_db == pytest.approx(20 * np.log10(np.abs(blocks[-1]).max()), abs=1e-3)
    stream = Stream(model, size)
    expected = np.concatenate([np.clip(stream.process(b), -1, 1) for b in blocks])
    np.testing.assert_allclose(np.concatenate(captured), expected, atol=1e-6)
    assert state.timing is not None and len(state.timing.times) == len(blocks)


def test_device_mode_never_clips_and_adds_no_latency(monkeypatch):
    from fastddsp.dsp.limiter import CEILING

    model = load("violin-tiny")
    size = 256
    blocks, captured = melody_on_a_fake_device(monkeypatch, set(), size)
    state = run_live(Stream(model, size, loudness_db=40.0))
    out = np.concatenate(captured)
    assert np.abs(out).max() <= CEILING and state.limiter.max_reduction_db > 6
    # the same samples as the engine's, scaled down only where it would clip: no delay
    engine = Stream(model, size, loudness_db=40.0)
    raw = np.concatenate([engine.process(b) for b in blocks])
    assert out.size == raw.size
    assert np.all(np.abs(out) <= np.abs(raw) + 1e-6)
    quiet = np.abs(raw) < 0.05
    assert np.corrcoef(out[~quiet], raw[~quiet])[0, 1] > 0.8


def test_rate_bridge_is_a_short_delay():
    rate = 48000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 1000 * t) * np.minimum(1, t * 10)).astype(np.float32)
    bridge = RateBridge(lambda y: y, rate, SR)   # the engine replaced by the identity
    out = np.concatenate([bridge(x[i: i + 256]) for i in range(0, x.size, 256)])
    assert out.size == x.size and bridge.underruns == 0
    lags = range(0, 200)
    errors = [np.abs(out[2000 + k: 40000 + k] - x[2000: 40000]).max() for k in lags]
    delay = int(np.argmin(errors))
    assert delay <= 64 and errors[delay] < 0.02      # 1.3 ms, cubic interpolation error


def test_device_mode_falls_back_to_the_device_rate(monkeypatch):
    """A device that only runs at 48 kHz: the engine runs at 16 kHz between resamplers, and
    a 440 Hz input still comes out at 440 Hz, block for block."""
    model = load("trumpet-tiny")
    rate, size = 48000, 768
    t = np.arange(2 * rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.1)).astype(np.float32)
    blocks = [x[i: i + size] for i in range(0, x.size - size + 1, size)]
    captured: list[np.ndarray] = []
    monkeypatch.setitem(sys.modules, "sounddevice",
                        fake_sounddevice(blocks, set(), captured, rates=(rate, 44100)))
    state = run_live(Stream(model, 256))
    assert state.device_rate == rate and state.bridge is not None
    assert state.bridge.underruns == 0
    assert [c.size for c in captured] == [size] * len(blocks)
    out = np.concatenate(captured)[rate // 2:]
    assert np.abs(out).max() > 0.01
    f0, conf = track(resample(out, rate, SR), np.arange(10, 90) * 256, "fast")
    assert np.median(f0[conf > 0.8]) == pytest.approx(440, rel=0.01)


def test_device_mode_without_audio_devices_is_one_line_exit_2(capsys):
    # here PortAudio is absent (or present with no device): either way a clear message
    assert run(["live", "--seconds", "0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastddsp: error:") and "\n" not in err


def test_bad_input_files(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "out.wav"
    assert run(["live", "--input-file", str(bad), "--output-file", str(out)]) == 2
    assert not out.exists()
    assert run(["live", "--input-file", str(bad)]) == 2
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    assert run(["live", "--input-file", str(empty), "--output-file", str(out)]) == 2
    assert not out.exists()
    assert run(["live", "--input-file", str(empty), "--output-file", str(tmp_path / "o.mp3")]
               ) == 2
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.1] * 100, np.float32), SR, subtype="FLOAT")
    assert run(["live", "--input-file", str(nan), "--output-file", str(out)]) == 2
    assert not out.exists()
    assert run(["live", "--model", "nope", "--input-file", str(nan), "--output-file", str(out)]
               ) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 6 and all(e.startswith("fastddsp: error:") for e in errors)


PEAK_SCRIPT = textwrap.dedent("""
    import resource, sys
    from fastddsp.realtime.live import stream_file
    from fastddsp.models import load
    stream_file(load("violin-tiny"), sys.argv[1], sys.argv[2], block_size=4096)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.mark.slow
def test_ten_minute_file_streams_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(0)
    peaks = {}
    timeout = 600.0  # the 1 min file's; the 10 min file's follows from its measured time
    for name, seconds in (("short.wav", 60), ("long.wav", 600)):
        with sf.SoundFile(tmp_path / name, "w", SR, 1, "PCM_16") as f:
            for _ in range(seconds // 10):
                f.write(np.roll(melody(10.0), int(rng.integers(0, SR))))
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / name),
                            str(tmp_path / f"out-{name}")], capture_output=True, text=True,
                           timeout=timeout, check=True)
        # a memory test, not a speed test: 10x the audio gets 30x the 1 min file's time
        timeout = 30 * (time.perf_counter() - start) + 60
        peaks[name] = int(r.stdout.strip().splitlines()[-1]) / 1024  # MiB
    assert sf.info(tmp_path / "out-long.wav").frames == 600 * SR
    print(f"peak RSS: 1 min {peaks['short.wav']:.0f} MiB, 10 min {peaks['long.wav']:.0f} MiB")
    # the 10 min input as float32 alone would be 33 MiB more than the 1 min one
    assert peaks["long.wav"] - peaks["short.wav"] < 20, peaks
