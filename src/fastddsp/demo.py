"""`fastddsp demo`: render the built-in melody through every bundled model (or, before any
model is bundled, through the untrained presets) into a folder with an index.html."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_text_atomic
from .io import write_audio
from .models.config import PRESETS
from .models.model import Model
from .models.registry import bundled_models, load
from .score import DEMO_MELODY, notes_to_features
from .synthesis import synthesize_features


@dataclass
class DemoResult:
    folder: Path
    rows: list[tuple[str, Path]]
    trained: bool


def run_demo(out_dir: str | Path) -> DemoResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bundled = bundled_models()
    models: list[tuple[str, Model]]
    if bundled:
        models = [(name, load(name)) for name in bundled]
    else:
        models = [(f"{name} (untrained)", Model.from_preset(name)) for name in PRESETS]
    rows = []
    for label, model in models:
        feats = notes_to_features(DEMO_MELODY, model.frame_rate)
        audio = synthesize_features(model, feats)
        wav = out / f"melody.{label.split()[0]}.wav"
        write_audio(wav, audio, model.sample_rate)
        rows.append((label, wav))
    cells = "\n".join(
        f"<tr><th>{html.escape(label)}</th><td><audio controls src='{html.escape(wav.name)}'>"
        f"</audio></td></tr>" for label, wav in rows)
    note = "" if bundled else ("<p>No pretrained model is bundled yet: these are untrained "
                               "presets, so they do not sound like an instrument.</p>")
    page = (f"<!doctype html><meta charset='utf-8'><title>fastddsp demo</title>"
            f"<h1>fastddsp demo</h1>{note}<table><tr><th>model</th><th>melody</th></tr>"
            f"{cells}</table>\n")
    write_text_atomic(out / "index.html", page)
    return DemoResult(out, rows, bool(bundled))
