"""Where the causal pitch trackers disagree with CREPE-full: near note changes, or elsewhere.

On the 24 thesis clips of ``../shared/data`` (the pitch networks' test set), 100 frames/s,
CREPE-full's voiced frames are split in two: those within 30 ms after a change (CREPE-full's
pitch moved more than 50 cents against one of the three frames before, or one of them was
unvoiced: onsets, note changes, slides) and the rest. Each tracker's raw pitch accuracy is
given on both. For scale, CREPE-full's own track 10 and 20 ms late: what a tracker that
judged exactly as CREPE-full does, but saw 22 or 12 ms past each instant instead of CREPE's
32 ms (its 64 ms window is centred), would score. The networks see 16 ms (``net``) and 5 ms
(``net-5ms``) past each instant; the stream's YIN 16 ms.

    .venv/bin/python benchmarks/pitch_onsets.py [--data ../shared/data]

CREPE-full's tracks are read from ``benchmarks/pitch_trackers.py``'s cache (run it first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fastddsp.features.loudness import frame_centres
from fastddsp.features.metrics import cents
from fastddsp.features.pitch import PITCH_RATE, TRACKERS
from fastddsp.features.pitchnet import net_pitch
from fastddsp.io import read_audio
from fastddsp.realtime.stream import STREAM_YIN

GROUPS = ("violin", "trumpet", "transfer")
RATE = 100.0          # frames/s, as pitch_trackers.py
CHANGE_FRAMES = 3     # 30 ms
CHANGE_CENTS = 50.0


def near_change(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Frames within ``CHANGE_FRAMES`` after a pitch change or an unvoiced frame."""
    near = np.zeros(f0.size, bool)
    for k in range(1, CHANGE_FRAMES + 1):
        before, was_voiced = np.ones(f0.size), np.zeros(f0.size, bool)
        before[k:], was_voiced[k:] = f0[:-k], voiced[:-k]
        near |= ~was_voiced | (np.abs(cents(f0, np.maximum(before, 1.0))) > CHANGE_CENTS)
    return near


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--cache", default="cache/pitch-bench")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data, cache = Path(args.data), Path(args.cache)
    if not data.is_dir():
        raise SystemExit(f"{data} is absent")
    print(f"# 100 frames/s; near = within {CHANGE_FRAMES * 10} ms after a change of more than "
          f"{CHANGE_CENTS:g} cents or an onset (CREPE-full's track); agreement within 50 cents")
    print("| clips | tracker | look-ahead | frames near a change | agreement near | "
          "elsewhere | all |")
    print("|---|---|---|---|---|---|---|")
    for group in GROUPS:
        counts: dict[str, np.ndarray] = {}
        for wav in sorted((data / group).glob("*.wav")):
            ref = cache / f"{wav.stem}.crepe-full.{RATE:g}.npz"
            if not ref.is_file():
                raise SystemExit(f"{ref} is absent: run benchmarks/pitch_trackers.py first")
            z = np.load(ref)
            ref_f0 = z["f0"].astype(np.float64)
            voiced = z["conf"] >= TRACKERS["crepe-full"].voicing_threshold
            audio, _ = read_audio(wav, PITCH_RATE)
            centres = frame_centres(audio.size, PITCH_RATE, RATE)
            near = near_change(ref_f0, voiced)
            tracks = {"net": net_pitch(audio, centres, "net")[0],
                      "net-5ms": net_pitch(audio, centres, "net-5ms")[0],
                      "stream (YIN)": STREAM_YIN.pitch(audio, centres)[0]}
            for late in (1, 2):
                shifted = np.ones_like(ref_f0)
                shifted[late:] = ref_f0[:-late]
                tracks[f"crepe-full {late * 10} ms late"] = shifted
            for name, est in tracks.items():
                ok = np.abs(cents(np.maximum(est[: ref_f0.size], 1.0), ref_f0)) <= 50
                c = counts.setdefault(name, np.zeros(4))
                c += [np.sum(voiced & near), np.sum(voiced & near & ok),
                      np.sum(voiced & ~near), np.sum(voiced & ~near & ok)]
        ahead = {"net": "16 ms", "net-5ms": "5 ms", "stream (YIN)": "16 ms",
                 "crepe-full 10 ms late": "22 ms", "crepe-full 20 ms late": "12 ms"}
        for name, (n_near, ok_near, n_else, ok_else) in counts.items():
            total = n_near + n_else
            print(f"| {group} | {name} | {ahead[name]} | {n_near / total:.1%} | "
                  f"{ok_near / n_near:.1%} | {ok_else / n_else:.1%} | "
                  f"{(ok_near + ok_else) / total:.1%} |")


if __name__ == "__main__":
    main()
