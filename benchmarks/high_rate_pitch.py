"""Pitch from 48 kHz input: the streaming engine's own decimation (a causal FIR, every third
sample) against resampling to 16 kHz first (soxr, as offline feature extraction does), both
tracked by the stream's YIN on the same centred frames and scored against CREPE-full on the
resampled audio (raw pitch accuracy, gross and octave errors on CREPE-full's voiced frames,
as ``benchmarks/pitch_trackers.py``). The 48 kHz recordings of ``../shared/data/violin-bach``.

    .venv/bin/python benchmarks/high_rate_pitch.py [--seconds 30] [--data ../shared/data]

CREPE-full takes 10-20 minutes per minute of audio on this CPU; its tracks are cached.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from fastddsp.features.loudness import frame_centres
from fastddsp.features.metrics import cents, pitch_agreement
from fastddsp.features.pitch import PITCH_RATE, TRACKERS
from fastddsp.io import read_audio
from fastddsp.realtime.stream import STREAM_YIN, decimation_filter, pitch_input

RATE = 48000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--seconds", type=float, default=30.0, help="from the start of each clip")
    ap.add_argument("--frame-rate", type=float, default=100.0)
    ap.add_argument("--cache", default="cache/pitch-bench-48k")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clips = [p for p in sorted((Path(args.data) / "violin-bach").glob("*"))
             if p.suffix in (".opus", ".flac", ".wav", ".mp3") and sf.info(p).samplerate == RATE]
    if not clips:
        raise SystemExit(f"no {RATE} Hz clip in {args.data}/violin-bach")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    ratio = RATE // PITCH_RATE
    late = (decimation_filter(ratio, RATE).numel() - 1) // 2 // ratio   # the FIR's delay
    scores: dict[str, list[dict]] = {"decimated in the stream": [], "resampled first (soxr)": []}
    between = []
    for clip in clips:
        high, _ = read_audio(clip, RATE)
        low, _ = read_audio(clip, PITCH_RATE)
        high, low = high[: int(args.seconds * RATE)], low[: int(args.seconds * PITCH_RATE)]
        centres = frame_centres(low.size, PITCH_RATE, args.frame_rate)
        ref_file = cache / f"{clip.stem}.{args.seconds:g}s.{args.frame_rate:g}.npz"
        if ref_file.is_file():
            z = np.load(ref_file)
            ref_f0, ref_conf = z["f0"], z["conf"]
        else:
            t0 = time.perf_counter()
            ref_f0, ref_conf = TRACKERS["crepe-full"].run(low, centres)
            np.savez(ref_file, f0=ref_f0, conf=ref_conf)
            print(f"# CREPE-full on {clip.name}: {time.perf_counter() - t0:.0f} s", flush=True)
        voiced = ref_conf >= TRACKERS["crepe-full"].voicing_threshold
        direct, _ = STREAM_YIN.pitch(pitch_input(high, RATE), centres + late)
        resampled, _ = STREAM_YIN.pitch(low, centres)
        scores["decimated in the stream"].append(pitch_agreement(ref_f0, voiced, direct))
        scores["resampled first (soxr)"].append(pitch_agreement(ref_f0, voiced, resampled))
        n = min(direct.size, resampled.size)
        between.append(np.abs(cents(direct[:n], resampled[:n]))[voiced[:n]])
    total = sum(r["frames"] for r in scores["decimated in the stream"])
    print(f"# {len(clips)} clips of {RATE} Hz violin, first {args.seconds:g} s each, "
          f"{args.frame_rate:g} frames/s; reference CREPE-full (voiced: confidence >= 0.5)")
    print("| 16 kHz pitch input | voiced frames | raw pitch accuracy | gross errors | "
          "octave errors |")
    print("|---|---|---|---|---|")
    for name, rs in scores.items():
        avg = {k: sum(r[k] * r["frames"] for r in rs) / max(total, 1)
               for k in ("rpa", "gross", "octave")}
        print(f"| {name} | {total} | {avg['rpa']:.1%} | {avg['gross']:.1%} | "
              f"{avg['octave']:.1%} |")
    d = np.concatenate(between)
    print(f"the two inputs' YIN f0 on those frames: median difference {np.median(d):.2f} "
          f"cents, within 10 cents {np.mean(d <= 10):.1%}, within 50 cents {np.mean(d <= 50):.1%}")


if __name__ == "__main__":
    main()
