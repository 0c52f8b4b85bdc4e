"""Whole-pipeline speed of timbre transfer for one minute of audio: pitch tracking + loudness
(per tracker) and synthesis (per model), 1 thread by default.

    .venv/bin/python benchmarks/pipeline_speed.py [--threads 1] [--crepe-full-seconds 10]

CREPE-full is timed on a shorter excerpt and scaled to a minute (it is linear in length).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fastddsp.features import extract_features
from fastddsp.features.adjust import adjust_features
from fastddsp.features.pitch import TRACKERS
from fastddsp.models.chunked import render_chunks
from fastddsp.models.config import PRESETS
from fastddsp.models.model import Model
from fastddsp.models.registry import bundled_models, load
from fastddsp.pipelines.score import demo_voice


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crepe-full-seconds", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    voice = demo_voice()
    minute = np.tile(voice, int(np.ceil(60 * 16000 / voice.size)))[: 60 * 16000]
    feature_s: dict[str, float] = {}
    feats = None
    for name in TRACKERS:
        seconds = args.crepe_full_seconds if name == "crepe-full" else 60.0
        clip = minute[: int(seconds * 16000)]
        t0 = time.perf_counter()
        f = extract_features(clip, 16000, pitch=name, frame_rate=250.0, cache=False)
        feature_s[name] = (time.perf_counter() - t0) * 60.0 / seconds
        if name == "fast":
            feats = f
    assert feats is not None
    names = list(bundled_models()) or list(PRESETS)
    synth_s: dict[str, float] = {}
    for name in names:
        model = load(name) if name in bundled_models() else Model.from_preset(name)
        stats = model.stats if model.stats.get("pitch_midi") else {}
        adj, _ = adjust_features(feats, stats, octave="auto" if stats else 0,
                                 loudness="auto" if stats else "none")
        t0 = time.perf_counter()
        for _ in render_chunks(model, adj.f0_hz, adj.loudness_db):
            pass
        synth_s[name] = time.perf_counter() - t0
    def rt(seconds: float) -> str:
        x = 60 / seconds
        return f"{seconds:.2f} s ({x:.2g}x)" if x < 10 else f"{seconds:.2f} s ({x:.0f}x)"

    print(f"# one minute of audio, {args.threads} thread(s); seconds of compute "
          f"(x real time)")
    print("| tracker | features alone | " + " | ".join(f"+ {n}" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for tr, fs in feature_s.items():
        cells = [rt(fs + synth_s[n]) for n in names]
        print(f"| {tr} | {rt(fs)} | " + " | ".join(cells) + " |")
    print("| (synthesis alone) | | " + " | ".join(rt(synth_s[n]) for n in names) + " |")


if __name__ == "__main__":
    main()
