"""Writes src/fastddsp/bench_controls.npz: the realistic control curves `fastddsp bench` times
(features at 250 frames/s; nothing from ../shared). Run: .venv/bin/python
scripts/make_bench_controls.py (about a minute: CREPE-full on 4.5 s of audio).

- ``sung``: CREPE-full f0 and loudness of the built-in sung phrase
  (``pipelines.score.demo_voice``: a synthesized male "ah" with vibrato, formants and breath
  noise, D3 to A3), raw as a tracker gives them: vibrato, scoops, breath, rests.
- ``melody``: a violin-range melody rendered by ``score.notes_to_features`` with ±50-cent
  vibrato at 6 Hz, 100 ms portamento, an octave leap and slides, and dynamics from pp to ff.
"""

from pathlib import Path

import numpy as np

from fastddsp.features import extract_features
from fastddsp.pipelines.score import Note, demo_voice, notes_to_features

OUT = Path(__file__).resolve().parents[1] / "src" / "fastddsp" / "bench_controls.npz"
MELODY = [Note(m, t, d, v) for m, t, d, v in [
    (67, 0.0, 0.35, 0.5), (71, 0.4, 0.35, 0.6), (74, 0.8, 0.7, 0.8), (86, 1.6, 0.6, 1.0),
    (84, 2.3, 0.25, 0.7), (83, 2.6, 0.25, 0.6), (81, 2.9, 0.6, 0.5), (69, 3.6, 0.3, 0.3),
    (76, 4.0, 0.9, 0.9)]]


def main() -> None:
    sung = extract_features(demo_voice(), 16000, pitch="crepe-full", frame_rate=250.0,
                            loudness_rate=16000, cache=False)
    melody = notes_to_features(MELODY, 250.0, vibrato_hz=6.0, vibrato_cents=50.0, glide_s=0.1)
    np.savez_compressed(OUT, sung_f0_hz=sung.f0_hz, sung_loudness_db=sung.loudness_db,
                        melody_f0_hz=melody.f0_hz, melody_loudness_db=melody.loudness_db)
    print(f"wrote {OUT}: sung {sung.n_frames} frames, melody {melody.n_frames} frames")


if __name__ == "__main__":
    main()
