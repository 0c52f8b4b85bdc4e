"""Issue 32's quality goal: 48 kHz violins against 16 kHz ones upsampled, on the test stretch.

    .venv/bin/python benchmarks/rate_comparison.py [MODEL ...] [--test DIR] [--out DIR]

MODEL: bundled names or files (default: the bundled violins at 16 and 48 kHz). ``--test``
is the ``test48`` stretch that ``scripts/cut_splits.py recipes/splits/violin-bach.json``
writes (default ``runs/audio/violin-bach-test48``); it chose nothing. Each test file is read
at 48 kHz (mono) and given the features the 48 kHz models trained on (CREPE-full at 100
frames/s interpolated to 250; loudness at the model's rate); every model resynthesizes it; a
16 kHz output is upsampled to 48 kHz (soxr, HQ); each output and the recording are scored at
48 kHz after normalising both to -20 LUFS. Columns (lower is better but for the last):
multi-scale spectral distance over the whole band (FFT 2048 ... 64, as `fastddsp eval`); the
same below 8 kHz only; the mean log-magnitude distance of 8-24 kHz (FFT 2048); and the share
of the energy above 8 kHz, in dB against the recording's (0 = as much air as the violin).
With ``--out`` the renderings are written there (``<clip>.<model>.wav``, 48 kHz) and the
recordings as heard (mono, 48 kHz) to ``OUT/references/<clip>.wav``: `fastddsp eval OUT
OUT/references --tag MODEL` scores them and `fastddsp report` lays them out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from fastddsp.dsp.spectral import multiscale_spectral_distance
from fastddsp.features import extract_features
from fastddsp.features.loudness import loudness_db
from fastddsp.io import read_audio, resample, write_audio
from fastddsp.models.registry import bundled_models, load
from fastddsp.training.data import find_audio
from fastddsp.training.evaluate import normalise_lufs

RATE = 48000
SPLIT_HZ = 8000.0
DEFAULT_MODELS = ("violin-tiny", "violin-cnn", "violin-tiny-q", "violin-cnn-q", "violin-full",
                  "violin-tiny-48k", "violin-cnn-48k", "violin-tiny-48k-q", "violin-cnn-48k-q")


def features_of(audio48: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and its confidence at 250 frames/s, as the 48 kHz training data has them."""
    f = extract_features(audio48, RATE, pitch="crepe-full", frame_rate=250.0,
                         loudness_rate=RATE, pitch_rate=100.0)
    return f.f0_hz, f.confidence


def high_band(out: np.ndarray, ref: np.ndarray, size: int = 2048) -> tuple[float, float]:
    """Mean |log S - log S_ref| over 8-24 kHz, and the energy share above 8 kHz in dB
    against the reference's."""
    def spec(x: np.ndarray) -> np.ndarray:
        return torch.stft(torch.from_numpy(x), size, size // 4, window=torch.hann_window(size),
                          return_complex=True).abs().numpy()
    s, r = spec(out), spec(ref)
    hi = np.fft.rfftfreq(size, 1 / RATE) > SPLIT_HZ
    log_dist = float(np.abs(np.log(s[hi] + 1e-7) - np.log(r[hi] + 1e-7)).mean())
    share = (s[hi] ** 2).sum() / (s ** 2).sum(), (r[hi] ** 2).sum() / (r ** 2).sum()
    return log_dist, float(10 * np.log10(share[0] / share[1]))


def score(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    n = min(out.size, ref.size)
    o, r = normalise_lufs(out[:n], RATE), normalise_lufs(ref[:n], RATE)
    ot, rt = torch.from_numpy(o)[None], torch.from_numpy(r)[None]
    low = multiscale_spectral_distance(ot, rt, reduce=False, max_hz=torch.tensor([SPLIT_HZ]),
                                       sample_rate=RATE)
    hi_log, hi_share = high_band(o, r)
    return {"spectral": multiscale_spectral_distance(ot, rt).item(), "below_8k": low.item(),
            "log_8_24k": hi_log, "air_db": hi_share}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--test", type=Path, default=Path("runs/audio/violin-bach-test48"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path, help="write the per-clip scores here")
    args = ap.parse_args()
    names = args.models or [m for m in DEFAULT_MODELS if m in bundled_models()]
    files = find_audio(args.test)
    if not files:
        raise SystemExit(f"no test audio under {args.test} (run scripts/cut_splits.py)")
    clips = []
    for f in files:
        audio, _ = read_audio(f, RATE)
        clips.append((f.stem, audio, *features_of(audio)))
        if args.out is not None:
            write_audio(args.out / "references" / f"{f.stem}.wav", audio, RATE)
    rows: dict[str, list[dict[str, float]]] = {}
    rates: dict[str, int] = {}
    for name in names:
        model = load(name)
        sr = rates[name] = model.sample_rate
        for stem, audio, f0, _conf in clips:
            ld = loudness_db(resample(audio, RATE, sr), sr, 250.0)[: f0.size]
            out = model.synthesize(f0[: ld.size], ld)
            out48 = out if sr == RATE else resample(out, sr, RATE)
            rows.setdefault(name, []).append({"clip": stem, **score(out48, audio)})
            if args.out is not None:
                write_audio(args.out / f"{stem}.{Path(str(name)).stem}.wav", out48, RATE)
    print(f"test stretch: {len(clips)} files, {sum(c[1].size for c in clips) / RATE:.1f} s at "
          f"48 kHz ({args.test})")
    print("| model | rate | spectral (48 kHz) | below 8 kHz | log 8-24 kHz | air vs recording |")
    print("|---|---|---|---|---|---|")
    for name, clip_rows in rows.items():
        m = {k: float(np.mean([r[k] for r in clip_rows])) for k in clip_rows[0] if k != "clip"}
        rate = rates[name] // 1000
        print(f"| {Path(str(name)).stem} | {rate} kHz | {m['spectral']:.3f} | "
              f"{m['below_8k']:.3f} | {m['log_8_24k']:.2f} | {m['air_db']:+.1f} dB |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
