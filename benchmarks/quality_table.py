"""Bundled models against the thesis outputs on the same held-out clips.

    .venv/bin/python benchmarks/quality_table.py [--data ../shared/data] [--runs runs]

For each instrument: the validation clips of runs/data/<instrument>; each bundled model
resynthesizes them from their own features; the thesis' outputs of the same clips are scored
the same way (multi-scale spectral distance at -20 LUFS, lower is better).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from fastddsp.io import read_audio
from fastddsp.models.registry import bundled_models, load
from fastddsp.training.data import load_clips
from fastddsp.training.evaluate import evaluate_model, score_pair

THESIS_TAG = {"full": "full", "cnn": "cnn", "tiny": "cnn_tiny", "cnn-q": "cnn_q",
              "tiny-q": "cnn_tiny_q"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--pitch", default="crepe-tiny")
    args = ap.parse_args()
    shared, runs = Path(args.data), Path(args.runs)
    print("| model | train audio | steps | reverb | EMA | trained on | wall time | "
          "s/step (median) | ours: spectral | thesis: spectral | ours: loudness L1 dB | "
          "ours: f0 L1 st |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in bundled_models():
        inst, preset = name.split("-", 1)
        data_dir = runs / "data" / inst
        if not data_dir.is_dir():
            continue
        model = load(name)
        rep = evaluate_model(model, data_dir, split="val", score_pitch=args.pitch, label=name)
        clips, _ = load_clips(data_dir, "val")
        thesis = []
        for c in clips:
            out = shared / "thesis_outputs" / inst / f"{Path(c.name).stem}.{THESIS_TAG[preset]}.wav"
            if out.is_file():
                audio, _ = read_audio(out, model.sample_rate)
                thesis.append(score_pair(audio, c.audio, model.sample_rate, c.name,
                                         pitch=args.pitch).spectral_distance)
        run_dir = runs / "models" / f"{name.replace('-q', '')}.run"
        segments = _step_times(run_dir)
        steps_per = [v for rows in segments for _, v in rows]
        train = model.stats.get("training", {})
        wall = _wall(run_dir, runs / "models" / f"{name}.fddsp", train, segments)
        cfg_file = run_dir / "train_config.json"
        cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
        m = rep.mean()
        sps = statistics.median(steps_per) if steps_per else float("nan")
        ref = np.mean(thesis) if thesis else float("nan")
        print(f"| {name} | {train.get('train_seconds_audio', 0):.0f} s | "
              f"{_steps(train)} | {cfg.get('reverb', 'free')} | "
              f"{cfg.get('ema') or 'off'} | "
              f"{cfg.get('accelerator', '?')} | {wall} | {sps:.2f} | "
              f"**{m['spectral_distance']:.2f}** | {ref:.2f} | {m['loudness_l1_db']:.2f} | "
              f"{m['f0_l1_semitones']:.3f} |")


def _steps(train: dict) -> str:
    """Steps trained, and the step whose weights the model holds when that is another."""
    steps, kept = train.get("steps", "?"), train.get("kept_step")
    return str(steps) if kept in (None, steps) else f"{steps} (kept {kept})"


def _step_times(run_dir: Path) -> list[list[tuple[int, float]]]:
    """(step, seconds per step) rows of each segment of a run (one per start or resume)."""
    import csv
    out = []
    for path in sorted((run_dir / "logs").glob("version_*/metrics.csv")):
        with open(path) as f:
            out.append([(int(r["step"]), float(r["seconds_per_step"]))
                        for r in csv.DictReader(f) if r.get("seconds_per_step")])
    return out


def _segment_estimate(segments: list[list[tuple[int, float]]]) -> float | None:
    """Training seconds from the logs: the steps of each segment (one per start or resume)
    times its median seconds per step (validation not counted); None without step times."""
    if not any(segments):
        return None
    return sum((max(s for s, _ in rows) - min(s for s, _ in rows) + 1)
               * statistics.median(v for _, v in rows) for rows in segments if rows)


def _wall(run_dir: Path, model_file: Path, train: dict,
          segments: list[list[tuple[int, float]]]) -> str:
    timed = [rows for rows in segments if rows]
    if len(timed) == 1 and train.get("wall_seconds_last_segment"):  # trained in one go
        return f"{train['wall_seconds_last_segment'] / 60:.0f} min"
    # resumed, or its last resume only rewrote the model file (0 s): estimate from the logs
    if (seconds := _segment_estimate(segments)) is not None:
        return f"≈{seconds / 60:.0f} min"
    cfg = run_dir / "train_config.json"  # written when the run started
    if not (cfg.is_file() and model_file.is_file()):
        return "?"
    minutes = (model_file.stat().st_mtime - cfg.stat().st_mtime) / 60
    return f"{minutes:.0f} min" if minutes > 0 else "?"


if __name__ == "__main__":
    main()
