"""scripts/cut_splits.py: the fixed stretches of a split file, and files used for no split."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("cut_splits", ROOT / "scripts" / "cut_splits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stretches_cover_the_file_and_keep_the_held_out_stretches():
    cut = _script()
    pieces = cut.stretches(100.0, [{"start": 40.0, "end": 70.0, "split": "val"}], 30)
    assert pieces == [(0.0, 30.0, "train"), (30.0, 40.0, "train"), (40.0, 70.0, "val"),
                      (70.0, 100.0, "train")]


def test_unused_files_are_cut_for_no_split(tmp_path, monkeypatch):
    cut = _script()
    data = tmp_path / "data" / "src"
    data.mkdir(parents=True)
    for name in ("a.flac", "chords.flac"):
        sf.write(data / name, np.zeros((8000 * 12, 2), np.float32), 8000)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({
        "source": "src", "piece_seconds": 30,
        "held_out": [{"file": "a.flac", "start": 6.0, "end": None, "split": "test48"}],
        "unused": {"files": ["chords.flac"], "why": "chordal"}}))
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["cut_splits", str(split), "--data", str(tmp_path / "data"),
                                      "--out", str(out)])
    cut.main()
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.flac"))
    assert written == ["src-test48/a_0006.0.flac", "src/train/a_0000.0.flac"]
    assert sf.info(out / "src" / "train" / "a_0000.0.flac").frames == 6 * 8000


def test_the_violin_split_file_leaves_the_chordal_movements_unused():
    spec = json.loads((ROOT / "recipes" / "splits" / "violin-bach.json").read_text())
    assert spec["unused"]["files"] == ["john-garner_bwv1002_mov7.mp3",
                                       "minji-kim_bwv1003_mov3.opus"]
    assert {h["split"] for h in spec["held_out"]} == {"val", "test48"}
