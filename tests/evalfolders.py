"""Small `fastddsp eval` folders for the report's tests: synthetic reference clips resynthesized
by bundled models, scored with the fast tracker (a second or two in all)."""

import json
from pathlib import Path

from fastddsp.models import load
from fastddsp.training.evaluate import evaluate_model
from tests.synthetic import write_instrument

MODELS = ("violin-tiny-q", "violin-full", "violin-tiny")   # deliberately not in page order


def make_eval_dirs(root: Path, models: tuple[str, ...] = MODELS, n_clips: int = 2,
                   seconds: float = 1.0) -> tuple[Path, list[Path]]:
    """-> (the reference folder, one eval folder per model)."""
    refs = root / "refs"
    write_instrument(refs, n_files=n_clips, seconds=seconds)
    dirs = []
    for name in models:
        out = root / f"eval-{name}"
        evaluate_model(load(name), refs, out_dir=out, features_pitch="fast", score_pitch="fast",
                       label=name)
        dirs.append(out)
    return refs, dirs


def write_bench(path: Path) -> Path:
    """A `fastddsp bench --json` file with end-to-end figures for violin-tiny only."""
    rows = [{"model": "violin-tiny", "threads": t, "name": n, "seconds_of_audio": 1.0,
             "median_s": 1.0 / rtf, "runs": 3, "realtime_factor": rtf}
            for t, n, rtf in ((1, "end-to-end", 1234.0), (2, "end-to-end", 2000.0),
                              (1, "decoder", 9999.0))]
    path.write_text(json.dumps(rows))
    return path
