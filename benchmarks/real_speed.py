"""Speed on real performances: the clips in ../shared/data (violin, trumpet, transfer sources),
one thread, medians, every ratio measured in this one run.

    .venv/bin/python benchmarks/real_speed.py [--runs 7] [--threads 1] [--features-only]

Prints real-time factors (audio seconds per wall second) of
1. offline synthesis through the public API (``Model.synthesize``) on each clip's CREPE-full
   features (cached under FASTDDSP_CACHE / ~/.cache/fastddsp: the first run extracts them,
   about 10-20 minutes per minute of audio; ``--features-only`` just does that), beside the
   same model on a steady note of the same length (the synthetic best case);
2. the whole ``fastddsp transfer`` command, process start included, per tracker, on a 60 s
   file made of the transfer sources and violin clips end to end (tiny model; CREPE-full on
   its first 10 s, ``--crepe-full-seconds``);
3. the stream (``Stream.process``) on the real clips, 256-sample blocks: median and p99 per
   block against the block's duration.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from fastddsp.bench import steady_controls, time_call
from fastddsp.features import extract_features
from fastddsp.io import read_audio
from fastddsp.models.registry import bundled_models, load
from fastddsp.realtime.stream import Stream

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GROUPS = {"violin": "violin", "trumpet": "trumpet", "transfer": "violin"}  # folder -> models


def clips(folder: str) -> list[Path]:
    return sorted((DATA / folder).glob("*.wav"))


def features(path: Path):
    audio, sr = read_audio(path)
    return extract_features(audio, sr, pitch="crepe-full", frame_rate=250.0, loudness_rate=16000)


def _synth_time(model, f0: np.ndarray, loudness: np.ndarray, runs: int) -> float:
    return time_call(lambda: model.synthesize(f0, loudness), runs, warmup=1)


def offline(runs: int) -> None:
    from fastddsp.features.adjust import adjust_features

    print("# offline synthesis, Model.synthesize, CREPE-full features of each clip")
    print(f"{'model':14} {'clips':>8} {'real x (median)':>16} {'min':>7} {'steady x':>9} "
          f"{'real/steady':>11}")
    for folder, instrument in GROUPS.items():
        feats = [features(p) for p in clips(folder)]
        for name in (n for n in bundled_models() if n.startswith(instrument)):
            model = load(name)
            real, steady = [], []
            for f in feats:
                if folder == "transfer":  # as transfer gives them to the model
                    f, _ = adjust_features(f, model.stats, voicing_threshold=0.5)
                seconds = f.n_frames / 250.0
                real.append(seconds / _synth_time(model, f.f0_hz, f.loudness_db, runs))
                steady.append(seconds / _synth_time(model, *steady_controls(model, seconds),
                                                    runs))
            r, s = statistics.median(real), statistics.median(steady)
            print(f"{name:14} {folder:>8} {r:16,.0f} {min(real):7,.0f} {s:9,.0f} {r / s:11.2f}")


def transfer_pipeline(runs: int, crepe_full_seconds: float) -> None:
    print("# `fastddsp transfer` (process start included), violin-tiny: a 60 s file made of the "
          f"transfer sources and violin clips; CREPE-full on its first {crepe_full_seconds:g} s")
    parts = [read_audio(p, 16000)[0] for f in ("transfer", "violin") for p in clips(f)]
    audio = np.tile(np.concatenate(parts), 2)[: 60 * 16000]
    with tempfile.TemporaryDirectory() as tmp:
        for tracker in ("fast", "crepe-tiny", "crepe-full"):
            seconds = crepe_full_seconds if tracker == "crepe-full" else 60.0
            src = Path(tmp) / f"{seconds:g}s.wav"
            sf.write(src, audio[: int(seconds * 16000)], 16000)
            n = 1 if tracker == "crepe-full" else runs
            times = []
            for i in range(n):  # a fresh feature cache each run: nothing is reused
                env = {**os.environ, "OMP_NUM_THREADS": "1",
                       "FASTDDSP_CACHE": str(Path(tmp) / f"cache-{tracker}-{i}")}
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "fastddsp", "transfer", str(src),
                                "--pitch", tracker, "-o", str(Path(tmp) / "out.wav")],
                               check=True, capture_output=True, env=env)
                times.append(time.perf_counter() - t0)
            t = statistics.median(times)
            print(f"{tracker:12} {seconds:4.0f} s of audio in {t:7.2f} s  {seconds / t:8.1f}x "
                  f"real time  ({n} runs)")


def stream(block: int = 256) -> None:
    print(f"# stream, Stream.process, {block}-sample blocks, real clips end to end")
    audio = np.concatenate([read_audio(p, 16000)[0] for f in GROUPS for p in clips(f)])
    budget = 1e3 * block / 16000
    for name in ("violin-tiny", "violin-cnn", "trumpet-tiny"):
        s = Stream(load(name), block)
        times = []
        with torch.inference_mode():
            for i in range(0, audio.size - block + 1, block):
                t0 = time.perf_counter()
                s.process(audio[i: i + block])
                times.append(time.perf_counter() - t0)
        t = np.asarray(times[50:]) * 1e3
        print(f"{name:14} median {np.median(t):6.3f} ms  p99 {np.percentile(t, 99):6.3f} ms "
              f"({100 * np.percentile(t, 99) / budget:4.1f} % of {budget:.0f} ms)  "
              f"over budget {int((t > budget).sum())}/{t.size}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument("--crepe-full-seconds", type=float, default=10.0,
                    help="length of the CREPE-full transfer (it is linear in length)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: this benchmark needs the shared clips")
    torch.set_num_threads(args.threads)
    if args.features_only:
        for folder in GROUPS:
            for p in clips(folder):
                features(p)
                print(f"features of {p.name} cached", flush=True)
        return
    import platform
    print(f"# {platform.machine()}, {args.threads} thread(s), torch {torch.__version__}, "
          f"medians of {args.runs} runs")
    offline(args.runs)
    stream()
    transfer_pipeline(max(1, args.runs // 2), args.crepe_full_seconds)


if __name__ == "__main__":
    main()
