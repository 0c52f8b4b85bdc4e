"""Every pitch tracker against CREPE-full on the clips in ../shared/data: raw pitch accuracy,
gross and octave errors, and speed (1 thread). Also the streaming engine's YIN ("stream": a
512-sample window, the same frames centred; the engine sees them 16 ms later). "net" is the
pitch network as the stream runs it (causally, 250 frames/s, 16 ms past each instant;
"net-5ms" 5 ms; "stream-5ms" is the stream's YIN looking 5 ms ahead); these 24 clips are the
networks' test set.

    .venv/bin/python benchmarks/pitch_trackers.py [--frame-rate 100] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fastddsp.features.loudness import frame_centres
from fastddsp.features.metrics import pitch_agreement
from fastddsp.features.pitch import PITCH_RATE, TRACKERS
from fastddsp.features.pitchnet import net_pitch
from fastddsp.io import read_audio
from fastddsp.realtime.stream import STREAM_YIN, WINDOW

GROUPS = ("violin", "trumpet", "transfer")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--frame-rate", type=float, default=100.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default="cache/pitch-bench")
    ap.add_argument("--net", nargs="*", default=[], metavar="WEIGHTS",
                    help="also score these pitch-network files (rows net:<file name>)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"{data} is absent")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], list[dict]] = {}
    trackers = {name: t.run for name, t in TRACKERS.items()}
    for w in args.net:
        trackers[f"net:{Path(w).stem}"] = partial(net_pitch, weights=w)
    timing: dict[str, list[float]] = {t: [] for t in [*trackers, "stream"]}
    audio_s = 0.0
    for group in GROUPS:
        for wav in sorted((data / group).glob("*.wav")):
            audio, _ = read_audio(wav, PITCH_RATE)
            audio_s += audio.size / PITCH_RATE
            centres = frame_centres(audio.size, PITCH_RATE, args.frame_rate)
            tracks = {}
            for name, run in trackers.items():
                # CREPE's results are cached (its weights never change); the others are fast
                # and are run every time, so a retrained pitch network is never read stale
                f = cache / f"{wav.stem}.{name}.{args.frame_rate:g}.npz"
                if name.startswith("crepe") and f.is_file():
                    z = np.load(f)
                    tracks[name] = (z["f0"], z["conf"])
                    timing[name].append(float(z["seconds"]))
                    continue
                t0 = time.perf_counter()
                f0, conf = run(audio, centres)
                dt = time.perf_counter() - t0
                if name.startswith("crepe"):
                    np.savez(f, f0=f0, conf=conf, seconds=dt)
                tracks[name] = (f0, conf)
                timing[name].append(dt)
            t0 = time.perf_counter()
            tracks["stream"] = STREAM_YIN.pitch(audio, centres)
            timing["stream"].append(time.perf_counter() - t0)
            # the same YIN looking only 5 ms ahead (net-5ms's lead): its window ends 80
            # samples after the instant, so it is centred 176 samples before it
            tracks["stream-5ms"] = STREAM_YIN.pitch(audio, centres - (WINDOW // 2 - 80))
            ref_f0, ref_conf = tracks["crepe-full"]
            voiced = ref_conf >= TRACKERS["crepe-full"].voicing_threshold
            for name in [*trackers, "stream", "stream-5ms"]:
                if name == "crepe-full":
                    continue
                results.setdefault((group, name), []).append(
                    pitch_agreement(ref_f0, voiced, tracks[name][0]))
    print(f"# reference: crepe-full, voiced = its confidence >= 0.5; {args.frame_rate:g} "
          f"frames/s; {args.threads} thread(s); {audio_s:.0f} s of audio")
    print("| tracker | clips | voiced frames | raw pitch accuracy | gross errors | octave errors |")
    print("|---|---|---|---|---|---|")
    for (group, name), rs in results.items():
        frames = sum(r["frames"] for r in rs)
        avg = {k: sum(r[k] * r["frames"] for r in rs) / max(frames, 1)
               for k in ("rpa", "gross", "octave")}
        print(f"| {name} | {group} | {frames} | {avg['rpa']:.1%} | {avg['gross']:.1%} | "
              f"{avg['octave']:.1%} |")
    print()
    print("| tracker | seconds per second of audio | x real time |")
    print("|---|---|---|")
    for name, ts in timing.items():
        per_s = sum(ts) / audio_s
        print(f"| {name} | {per_s:.4f} | {1 / per_s:,.{1 if per_s > 0.1 else 0}f}x |")


if __name__ == "__main__":
    main()
