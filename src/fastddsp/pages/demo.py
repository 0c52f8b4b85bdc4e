"""`fastddsp demo`: the main job on bundled defaults. Renders a built-in melody and transfers a
built-in sung phrase through every bundled model (before any model is bundled: the untrained
presets) into a folder with an ``index.html`` laid out like the thesis' audio page: rows are
models, columns are clips, an audio player in each cell, f0/loudness plots per clip."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..features import extract_features
from ..features.frames import Features
from ..io import write_audio
from ..models.config import PRESETS
from ..models.model import Model
from ..models.registry import bundled_models, load
from ..pipelines.render import render_notes
from ..pipelines.score import DEMO_MELODY, demo_voice, notes_to_features
from ..pipelines.transfer import transfer_features

SR = 16000
def svg_plot(series: list[tuple[np.ndarray, str, str]], y_label: str,
             width: int = 320, height: int = 90, log: bool = False) -> str:
    """A small inline SVG line plot of frame-rate series (values, colour, label)."""
    vals = [np.log2(np.maximum(v, 1e-3)) if log else v for v, _, _ in series]
    lo = min(float(np.min(v)) for v in vals)
    hi = max(float(np.max(v)) for v in vals)
    hi = hi if hi > lo else lo + 1
    lines = []
    for v, (_, colour, label) in zip(vals, series, strict=True):
        step = max(1, v.size // width)
        vv = v[::step]
        xs = np.linspace(0, width, vv.size)
        ys = height - 12 - (vv - lo) / (hi - lo) * (height - 24)
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.2' "
                     f"points='{pts}'><title>{html.escape(label)}</title></polyline>")
    top = f"{2 ** hi:.0f} Hz" if log else f"{hi:.0f}"
    bottom = f"{2 ** lo:.0f} Hz" if log else f"{lo:.0f}"
    legend = " · ".join(f"<tspan fill='{c}'>{html.escape(lab)}</tspan>" for _, c, lab in series)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"role='img' aria-label='{html.escape(y_label)}'>"
            f"<rect width='100%' height='100%' fill='#fafafa'/>{''.join(lines)}"
            f"<text x='2' y='10' font-size='9'>{html.escape(y_label)} {top}</text>"
            f"<text x='2' y='{height - 2}' font-size='9'>{bottom}</text>"
            f"<text x='{width - 2}' y='10' font-size='9' text-anchor='end'>{legend}</text>"
            f"</svg>")


@dataclass
class DemoResult:
    folder: Path
    rows: list[str]
    files: list[Path] = field(default_factory=list)
    trained: bool = True


def _features_plots(feats: Features, adjusted: Features | None = None) -> str:
    f0 = [(feats.f0_hz, "#1f77b4", "input f0")]
    ld = [(feats.loudness_db, "#1f77b4", "input loudness")]
    if adjusted is not None:
        f0.append((adjusted.f0_hz, "#d62728", "adjusted f0"))
        ld.append((adjusted.loudness_db, "#d62728", "adjusted loudness"))
    return svg_plot(f0, "f0", log=True) + "<br>" + svg_plot(ld, "loudness dB")


def run_demo(out_dir: str | Path) -> DemoResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bundled = bundled_models()
    if bundled:
        models = [(name, load(name)) for name in bundled]
    else:
        models = [(f"{name}-untrained", Model.from_preset(name)) for name in PRESETS]
    voice = demo_voice()
    voice_wav = write_audio(out / "voice.input.wav", voice, SR)
    files = [voice_wav]
    melody = notes_to_features(DEMO_MELODY, 250.0)
    voice_feats = extract_features(voice, SR, pitch="crepe-tiny", frame_rate=250.0)
    cells: list[tuple[str, str, str]] = []
    adjusted_example: Features | None = None
    for name, model in models:
        mel = render_notes(list(DEMO_MELODY), model)
        feats = voice_feats if model.sample_rate == SR else extract_features(
            voice, SR, pitch="crepe-tiny", frame_rate=model.frame_rate,
            loudness_rate=model.sample_rate)
        octave = "auto" if model.stats.get("pitch_midi") else 0
        loud = "auto" if model.stats.get("loudness_db") else "none"
        chunks, _, adj = transfer_features(feats, model, octave=octave, loudness=loud,
                                           pitch="crepe-tiny")
        adjusted_example = adjusted_example if adjusted_example is not None else adj
        tr = np.concatenate(list(chunks))
        a = write_audio(out / f"melody.{name}.wav", mel, model.sample_rate)
        b = write_audio(out / f"voice.{name}.wav", tr, model.sample_rate)
        files += [a, b]
        cells.append((name, a.name, b.name))

    def player(src: str) -> str:
        return f"<audio controls preload='none' src='{html.escape(src)}'></audio>"

    head = ("<tr><th></th><th>built-in melody (score → audio)</th>"
            "<th>sung phrase → instrument (timbre transfer)</th></tr>")
    ref = (f"<tr><th>input</th><td>{_features_plots(melody)}</td>"
           f"<td>{player(voice_wav.name)}<br>{_features_plots(voice_feats, adjusted_example)}"
           f"</td></tr>")
    rows = "".join(f"<tr><th>{html.escape(n)}</th><td>{player(a)}</td><td>{player(b)}</td></tr>"
                   for n, a, b in cells)
    note = "" if bundled else ("<p class='warn'>No pretrained model is bundled in this "
                               "installation: these rows are untrained presets, so they do not "
                               "sound like an instrument.</p>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fastddsp demo</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:6px;vertical-align:top}}th{{text-align:left}}
.warn{{color:#a00}}</style></head><body>
<h1>fastddsp demo</h1>{note}
<p>Rows: models. Columns: clips. The plots show the pitch and loudness the models were given
(red: after adjusting the sung phrase to the first model's training data).</p>
<table>{head}{ref}{rows}</table></body></html>
"""
    files.append(write_text_atomic(out / "index.html", page))
    return DemoResult(out, [c[0] for c in cells], files, bool(bundled))
