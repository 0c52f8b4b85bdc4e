"""CREPE-full labels for training the streaming pitch network (issue 32): for every file of
the training sources in ../shared/data, the 360-bin CREPE-full salience, f0 and confidence at
100 frames/s on the audio resampled to 16 kHz, cached as one .npz per file.

    .venv/bin/python scripts/pitch_labels.py [--data ../shared/data] [--out cache/pitch-labels]

CREPE-full runs at about a fifth of real time on one thread here: the 7.6 minutes of sources
take about 40 minutes. Files already labelled are skipped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fastddsp.features import crepe
from fastddsp.features.loudness import frame_centres
from fastddsp.features.pitch import PITCH_RATE
from fastddsp.io import read_audio

FRAME_RATE = 100.0
# Sources the pitch network learns from. The thesis clips (violin/, trumpet/, transfer/) are
# its test set and are never labelled here. Two movements of violin-bach/ are left out: BWV
# 1002's 7th and BWV 1003's 3rd are written in double stops and chords throughout (see the
# data's README), where one pitch per frame is no right answer and CREPE's pick between the
# voices is no label to learn.
SOURCES = (
    "violin-bach/john-garner_bwv1002_mov8_from20s.flac",
    "violin-bach/john-garner_bwv1002_mov6.mp3",
    "trumpet-notes/*.wav",
    "trumpet-phrase/*.ogg",
    "violin-bach/minji-kim_bwv1003_mov4.opus",
)
CHORDAL = ("john-garner_bwv1002_mov7", "minji-kim_bwv1003_mov3")


def label_file(path: Path, out: Path) -> None:
    audio, _ = read_audio(path, PITCH_RATE)
    centres = frame_centres(audio.size, PITCH_RATE, FRAME_RATE)
    t0 = time.perf_counter()
    sal = crepe.salience(audio, centres, "full")
    path_bins = crepe.viterbi_path(sal)
    f0 = crepe.bins_to_hz(crepe.local_average_bins(sal, path_bins)).astype(np.float32)
    conf = sal[np.arange(path_bins.size), path_bins].astype(np.float32)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, salience=sal.astype(np.float16), f0=f0, confidence=conf,
             centres=centres, frame_rate=FRAME_RATE)
    tmp.replace(out)
    print(f"{path.name}: {audio.size / PITCH_RATE:.1f} s in {time.perf_counter() - t0:.0f} s",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--out", default="cache/pitch-labels")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in SOURCES:
        for path in sorted(data.glob(pattern)):
            target = out / f"{path.parent.name}__{path.stem}.npz"
            if not target.is_file():
                label_file(path, target)


if __name__ == "__main__":
    main()
