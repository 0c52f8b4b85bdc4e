"""Real-time factor of each preset's decoder and full synthesis chain (4 s of audio).

    .venv/bin/python benchmarks/synth_speed.py [--threads 1] [--runs 20]
"""

from __future__ import annotations

import argparse
import platform

import torch

from fastddsp import Model
from fastddsp.bench import bench_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {args.seconds:g} s of audio, median of {args.runs}")
    print(f"{'preset':8} {'part':32} {'median ms':>10} {'x real time':>12}")
    for preset in ("tiny", "cnn", "full"):
        for t in bench_model(Model.from_preset(preset), args.seconds, args.runs):
            print(f"{preset:8} {t.name:32} {t.median_s * 1e3:10.2f} {t.realtime_factor:12.0f}")


if __name__ == "__main__":
    main()
