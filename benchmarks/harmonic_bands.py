"""How far up a violin's sound is harmonic: the measurement behind the high-rate presets'
harmonics and noise bands (docs/high-rate.md).

    .venv/bin/python benchmarks/harmonic_bands.py [--data ../shared/data] [--seconds 60]

For each full-length recording in ``violin-bach/`` (the first ``--seconds`` of each, at 48 kHz),
frames with a confident pitch (YIN at 16 kHz, confidence >= 0.9, f0 >= 150 Hz), 4096-point
Hann frames every 100 ms: per band, the share of the band's energy within +-10 % of a harmonic
spacing from a harmonic of f0, against what white noise gives with the same mask (0.20).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from fastddsp.features.yin import Yin

BANDS = [(2000, 4000), (4000, 8000), (8000, 12000), (12000, 16000), (16000, 20000),
         (20000, 24000)]
RATE = 48000
N_FFT = 4096


def band_shares(path: Path, seconds: float) -> tuple[list[list[float]], list[list[float]]]:
    x, sr = sf.read(str(path), always_2d=True, frames=int(sr_of(path) * seconds))
    x = x.mean(1)
    if sr != RATE:
        x = soxr.resample(x, sr, RATE)
    low = soxr.resample(x, RATE, 16000).astype(np.float32)
    centres = np.arange(N_FFT, x.size - N_FFT, RATE // 10)
    f0, conf = Yin().pitch(low, centres // 3)
    freqs = np.fft.rfftfreq(N_FFT, 1 / RATE)
    shares: list[list[float]] = [[] for _ in BANDS]
    chance: list[list[float]] = [[] for _ in BANDS]
    for c, f, confidence in zip(centres, f0, conf, strict=True):
        if confidence < 0.9 or f < 150:
            continue
        power = np.abs(np.fft.rfft(x[c - N_FFT // 2: c + N_FFT // 2] * np.hanning(N_FFT))) ** 2
        h = freqs / f
        near = np.abs(h - np.round(h)) < 0.1
        for i, (lo, hi) in enumerate(BANDS):
            band = (freqs >= lo) & (freqs < hi)
            if power[band].sum() > 0:
                shares[i].append(power[band & near].sum() / power[band].sum())
                chance[i].append(near[band].mean())
    return shares, chance


def sr_of(path: Path) -> int:
    return sf.info(str(path)).samplerate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" /
                                          "data"))
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    files = sorted(p for p in (Path(args.data) / "violin-bach").iterdir()
                   if p.suffix in (".flac", ".mp3", ".opus", ".wav"))
    shares: list[list[float]] = [[] for _ in BANDS]
    chance: list[list[float]] = [[] for _ in BANDS]
    for path in files:
        s, c = band_shares(path, args.seconds)
        for i in range(len(BANDS)):
            shares[i] += s[i]
            chance[i] += c[i]
    print(f"{len(files)} recordings, {len(shares[0])} pitched frames")
    for (lo, hi), s, c in zip(BANDS, shares, chance, strict=True):
        print(f"{lo / 1000:g}-{hi / 1000:g} kHz: energy near harmonics, median "
              f"{np.median(s):.2f} (white noise: {np.median(c):.2f})")


if __name__ == "__main__":
    main()
