"""A small synthetic instrument for training and data tests: harmonic tones with vibrato and
a moving envelope, written as audio files."""

from pathlib import Path

import numpy as np
import soundfile as sf


def write_instrument(folder: Path, n_files: int = 4, seconds: float = 7.5, sr: int = 16000,
                     seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        t = np.arange(int(seconds * sr)) / sr
        f = 196.0 * 2 ** (rng.integers(0, 15) / 12) * (1 + 0.008 * np.sin(2 * np.pi * 5 * t))
        ph = 2 * np.pi * np.cumsum(f) / sr
        env = 0.25 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.4 * t + i))
        x = env * (np.sin(ph) + 0.5 * np.sin(2 * ph) + 0.3 * np.sin(3 * ph))
        x = x + 0.002 * rng.standard_normal(t.size)
        p = folder / f"take{i}.wav"
        sf.write(p, x.astype(np.float32), sr)
        paths.append(p)
    return paths
