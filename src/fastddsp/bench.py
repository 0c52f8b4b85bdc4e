"""Speed measurement: real-time factors (audio seconds per wall second) of the decoder and of the
whole synthesis chain. Medians of repeated runs after warm-up. ``bench_table`` and
``bench_streams`` measure the rows that ``fastddsp bench`` prints."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .features import extract_features
from .features.adjust import adjust_features
from .features.frames import Features
from .models.chain import ChainStep, model_stepper
from .models.model import Model
from .models.registry import resolve
from .pipelines.render import score_loudness
from .pipelines.score import demo_voice
from .realtime.export import DecoderGraph, export_decoder
from .realtime.stream import Stream, measure_latency


@dataclass
class Timing:
    name: str
    seconds_of_audio: float
    median_s: float
    runs: int
    controls: str = ""  # what a synthesis played: "realistic" performance curves or "steady"

    @property
    def realtime_factor(self) -> float:
        return self.seconds_of_audio / self.median_s

    def as_dict(self) -> dict:
        return {**asdict(self), "realtime_factor": self.realtime_factor}


def time_call(fn: Callable[[], object], runs: int = 20, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


CONTROLS_FILE = "bench_controls.npz"


def realistic_controls(model: Model, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """``seconds`` of real-performance controls for ``model``, as its users' pipelines give
    them: the built-in sung phrase's CREPE-full features adjusted as ``transfer`` adjusts
    them (octave and loudness toward the training set), then a melody with ±50-cent vibrato,
    portamento, leaps and dynamics placed in the training range as ``render`` does; repeated
    to length. Shipped in the package (``scripts/make_bench_controls.py``)."""
    with resources.as_file(resources.files("fastddsp") / CONTROLS_FILE) as path, \
            np.load(path) as data:
        curves = {k: data[k].astype(np.float32) for k in data.files}
    sung = Features(curves["sung_f0_hz"], curves["sung_loudness_db"],
                    np.ones_like(curves["sung_f0_hz"]), 250.0).resample(model.frame_rate)
    if model.stats.get("pitch_midi"):
        sung, _ = adjust_features(sung, model.stats, voicing_threshold=0.0)
    melody = Features(curves["melody_f0_hz"], curves["melody_loudness_db"],
                      np.ones_like(curves["melody_f0_hz"]), 250.0).resample(model.frame_rate)
    f0 = np.concatenate([sung.f0_hz, melody.f0_hz])
    ld = np.concatenate([sung.loudness_db, score_loudness(melody.loudness_db, model)])
    n = max(1, round(seconds * model.frame_rate))
    reps = -(-n // f0.size)
    return np.tile(f0, reps)[:n], np.tile(ld, reps)[:n].astype(np.float32)


def steady_controls(model: Model, seconds: float, f0_hz: float = 262.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic best case: a steady middle C (1 % wobble) at -25 dB."""
    n = max(1, round(seconds * model.frame_rate))
    f0 = f0_hz * (1 + 0.01 * np.sin(np.arange(n) / 20))
    return f0.astype(np.float32), np.full(n, -25.0, np.float32)


def bench_model(model: Model, seconds: float = 4.0, runs: int = 20) -> list[Timing]:
    """Time, on realistic controls (``realistic_controls``): the decoder alone, the synthesis
    (harmonic + noise + reverb) from controls, and the whole chain through the public API
    (``Model.synthesize``: numpy in, numpy out) -- and that last one again on the steady
    note (``steady_controls``), the synthetic best case, for comparison."""
    f0_np, ld_np = realistic_controls(model, seconds)
    audio_s = f0_np.size * model.config.hop_size / model.sample_rate
    f0, ld = torch.from_numpy(f0_np)[None], torch.from_numpy(ld_np)[None]
    steady_f0, steady_ld = steady_controls(model, seconds)
    model.eval()
    with torch.inference_mode():
        # the stepped chain as Model.synthesize runs it: the synthesis timed alone on the
        # controls of the whole input (the decoder flushed), in offline reverb partitions
        chain = ChainStep(model, 0, model.synth.partition_frames(), model_stepper(model))
        n_dec = chain.n_decoder_states
        state = chain.initial_state(1)
        f0_c, harm, noise, _ = chain.controls(f0, ld, torch.tensor([0]), state[:n_dec], True)
        first = torch.tensor([-chain.look])
        parts = {
            "decoder": lambda: model.decode(f0, ld),
            "synth (harmonic+noise+reverb)": lambda: chain.synth(f0_c, harm, noise, first,
                                                                 state[n_dec:]),
            "end-to-end": lambda: model.synthesize(f0_np, ld_np),
        }
        timings = [Timing(name, audio_s, time_call(fn, runs), runs, "realistic")
                   for name, fn in parts.items()]
    timings.append(Timing("end-to-end", audio_s, time_call(
        lambda: model.synthesize(steady_f0, steady_ld), runs), runs, controls="steady"))
    return timings


def bench_runtimes(model: Model, seconds: float = 4.0, runs: int = 20) -> list[Timing]:
    """Decoder-only timings in each runtime: the default (what ``Model`` runs: ONNX Runtime
    for every float decoder at inference), PyTorch eager, TorchScript, ONNX Runtime fp32 as
    exported (with the current torch thread count for ONNX Runtime too); plus the synthesis
    and end to end."""
    import onnxruntime as ort  # a second's import, for this function alone

    timings = bench_model(model, seconds, runs)
    if model.is_quantized:  # its decoder is the int8 ONNX Runtime graph already
        for t in timings:
            if t.name == "decoder":
                t.name = "decoder onnxruntime int8"
        return timings
    f0_np, ld_np = realistic_controls(model, seconds)
    audio_s = f0_np.size * model.config.hop_size / model.sample_rate
    f0, ld = torch.from_numpy(f0_np)[None], torch.from_numpy(ld_np)[None]
    with torch.inference_mode():
        graph = DecoderGraph(model)
        timings.append(Timing("decoder pytorch eager", audio_s,
                              time_call(lambda: graph(f0, ld), runs), runs, "realistic"))
        traced = torch.jit.trace(graph, (f0, ld), check_trace=False)
        timings.append(Timing("decoder torchscript", audio_s,
                              time_call(lambda: traced(f0, ld), runs), runs, "realistic"))
    with tempfile.TemporaryDirectory() as tmp:
        path = export_decoder(model, Path(tmp) / "decoder.onnx", "onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as Model's
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {"f0_hz": f0.numpy(), "loudness_db": ld.numpy()}
    timings.append(Timing("decoder onnxruntime fp32", audio_s,
                          time_call(lambda: sess.run(None, feeds), runs), runs, "realistic"))
    return timings


def bench_trackers(names: list[str], seconds: float = 4.0, runs: int = 5) -> list[Timing]:
    """Pitch tracking + loudness of ``seconds`` of the demo voice at 250 frames/s."""
    voice = demo_voice()
    clip = np.tile(voice, int(np.ceil(seconds * 16000 / voice.size)))[: int(seconds * 16000)]
    return [Timing(f"features {name}", seconds,
                   time_call(lambda n=name: extract_features(clip, 16000, pitch=n, cache=False),
                             runs, warmup=1), runs) for name in names]


def bench_stream(model: Model, block_size: int, n_blocks: int = 10_000) -> dict:
    """Per-block processing time of the streaming engine (``process``: analysis, decoder,
    synthesis, reverb) over ``n_blocks`` blocks of a sung-like phrase, after warm-up."""
    voice = demo_voice(model.sample_rate)
    stream = Stream(model, block_size)
    need = (n_blocks + 50) * block_size
    audio = np.tile(voice, -(-need // voice.size))[:need]
    times = []
    with torch.inference_mode():
        for i in range(n_blocks + 50):
            block = audio[i * block_size: (i + 1) * block_size]
            t0 = time.perf_counter()
            stream.process(block)
            times.append(time.perf_counter() - t0)
    t = np.asarray(times[50:]) * 1e3
    budget = 1e3 * block_size / model.sample_rate
    return {"block": block_size, "blocks": int(t.size), "block_ms": budget,
            "median_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)),
            "max_ms": float(t.max()), "over_budget": int((t > budget).sum()),
            "latency_ms": 1e3 * stream.latency / model.sample_rate}


_MEMORY_SCRIPT = """
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from fastddsp.bench import realistic_controls
from fastddsp.models import resolve

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024

model = resolve(sys.argv[1])
f0, ld = realistic_controls(model, float(sys.argv[2]))
model.synthesize(f0[:10], ld[:10])
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
model.synthesize(f0, ld)
print(json.dumps({"rss_loaded_mib": before, "peak_rss_mib": status("VmHWM:")}))
"""


def peak_memory(name: str, seconds: float = 4.0) -> dict[str, float]:
    """Resident memory of a fresh process that has loaded model ``name`` (and the libraries),
    and its peak while it synthesizes ``seconds`` of audio end to end (one thread). Linux:
    the peak is reset through /proc before the synthesis."""
    r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, name, str(seconds)],
                       capture_output=True, text=True, timeout=600, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def machine() -> str:
    """What the figures were measured on: the CPU architecture and the torch version."""
    return f"{platform.machine()}, torch {torch.__version__}"


def bench_table(names: Sequence[str], threads: Sequence[int], seconds: float = 4.0,
                runs: int = 20, trackers: Sequence[str] = ("fast", "crepe-tiny", "crepe-full")
                ) -> Iterator[dict]:
    """``fastddsp bench``'s figures, one row (a dict, as written to JSON) at a time as each is
    measured, at each thread count in turn: the runtimes of each model (``bench_runtimes``;
    keys ``model``, ``threads`` and those of ``Timing.as_dict``), at the first count the peak
    memory of each (``name`` "peak memory", ``threads`` 1, the keys of ``peak_memory``), then
    the trackers (``bench_trackers``, at most 5 runs; ``model`` "-")."""
    models = {name: resolve(name) for name in names}
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for name, model in models.items():
            for t in bench_runtimes(model, seconds, runs):
                yield {"model": name, "threads": n_threads, **t.as_dict()}
        if n_threads == threads[0]:
            for name in names:
                yield {"model": name, "threads": 1, "name": "peak memory",
                       **peak_memory(name, seconds)}
        for t in bench_trackers(list(trackers), seconds, max(1, min(runs, 5))):
            yield {"model": "-", "threads": n_threads, **t.as_dict()}


def bench_streams(names: Sequence[str], threads: Sequence[int], n_blocks: int = 10_000,
                  blocks: Sequence[int] = (64, 128, 256)) -> Iterator[dict]:
    """``fastddsp bench --stream``'s figures, one row at a time as each is measured:
    ``bench_stream`` of each model at each block size and thread count, with ``model``,
    ``threads`` and the latency measured on an impulse (``latency_measured_ms``) beside the
    declared one."""
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for name in names:
            model = resolve(name)
            _, measured = measure_latency(model, 64)
            for block in blocks:
                r = bench_stream(model, block, n_blocks)
                r.update(model=name, threads=n_threads,
                         latency_measured_ms=1e3 * measured / model.sample_rate)
                yield r
