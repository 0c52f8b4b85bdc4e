"""`fastddsp report`: a static listening page from `fastddsp eval` folders, like the thesis'
audio page. Rows: the reference and each model (full, cnn, tiny, cnn-q, tiny-q when the labels
say so); columns: clips; an audio player and a spectrogram per cell, the eval metrics and the
speed per row, an f0/loudness plot (reference against every model) per clip.

The page is one self-contained folder (``index.html``, ``audio/``, ``img/``, ``report.json``)
with relative links only, so it opens from disk. It is built in a temporary folder beside the
target and renamed into place, so a failure leaves no half page; a previous report in the
target is replaced, anything else there is refused.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..bench import bench_model
from ..errors import UserError
from ..features import extract_features
from ..features.pitch import get_tracker
from ..io import read_audio, write_audio
from ..models import resolve
from ..training.data import AUDIO_SUFFIXES, MANIFEST, find_audio, read_manifest
from .plots import Curve, features_png, spectrogram_png

GENERATOR = "fastddsp report"
KINDS = ("full", "cnn", "tiny", "cnn-q", "tiny-q")
METRICS = (  # key in scores.json, column title, format
    ("spectral_distance", "spectral distance", "{:.3f}"),
    ("loudness_l1_db", "loudness L1 (dB)", "{:.2f}"),
    ("f0_l1_semitones", "f0 L1 (semitones)", "{:.3f}"),
    ("outlier_ratio", "f0 outliers (>1 st)", "{:.1%}"),
)
PLOT_FRAME_RATE = 100.0
PLOT_LOUDNESS_RATE = 16000


@dataclass
class Speed:
    realtime_factor: float
    how: str


@dataclass
class EvalDir:
    """One ``fastddsp eval -o`` folder: its scores and where its audio is."""
    path: Path
    label: str
    mean: dict[str, float]
    clips: dict[str, dict[str, Any]]      # clip name -> its scores
    origin: dict[str, str]

    def audio_file(self, clip: str) -> Path:
        tag = self.origin.get("tag")
        outputs = self.origin.get("outputs")
        candidates = [self.path / f"{clip}.wav"]
        if outputs:
            names = [f"{clip}.{tag}", clip] if tag else [clip]
            candidates = [Path(outputs) / f"{n}{s}" for n in names
                          for s in sorted(AUDIO_SUFFIXES)] + candidates
        for c in candidates:
            if c.is_file():
                return c
        raise UserError(f"{self.path}: no audio for clip {clip!r} (looked for "
                        f"{candidates[0].name} in {candidates[0].parent})")


@dataclass
class ReportResult:
    folder: Path
    rows: list[str]
    clips: list[str]
    speeds: dict[str, Speed | None] = field(default_factory=dict)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def load_eval_dir(path: str | Path) -> EvalDir:
    path = Path(path)
    if not path.exists():
        raise UserError(f"eval folder {path} does not exist")
    if not path.is_dir():
        raise UserError(f"{path} is not a folder (give folders written by `fastddsp eval -o`)")
    scores = path / "scores.json"
    if not scores.is_file():
        raise UserError(f"{path} has no scores.json: write it with `fastddsp eval ... -o {path}`")
    try:
        data = json.loads(scores.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {scores}: {str(e).splitlines()[0]}") from None
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list) or not all(isinstance(c, dict) and isinstance(c.get("name"),
                                                                                 str)
                                              for c in clips):
        raise UserError(f"{scores} is not a `fastddsp eval` scores file (no list of clips)")
    if not clips:
        raise UserError(f"{scores} lists no clips")
    mean = data.get("mean") if isinstance(data.get("mean"), dict) else {}
    origin = {k: str(data[k]) for k in ("references", "split", "outputs", "tag") if data.get(k)}
    return EvalDir(path, str(data.get("label") or path.name),
                   {k: _number(mean.get(k)) for k, _, _ in METRICS},
                   {c["name"]: c for c in clips}, origin)


def model_kind(label: str) -> str | None:
    """Which of the thesis' five models a label names (``violin-cnn-q``, ``cnn_tiny_q``,
    ``tiny``...), or None."""
    text = label.lower().replace("_", "-")
    for kind, pattern in (("tiny-q", r"tiny-q"), ("cnn-q", r"cnn-q"), ("tiny", r"(cnn-)?tiny"),
                          ("cnn", r"cnn"), ("full", r"full")):
        if re.search(rf"(^|[-.]){pattern}$", text):
            return kind
    return None


def order_rows(dirs: list[EvalDir]) -> list[EvalDir]:
    """full, cnn, tiny, cnn-q, tiny-q first (stable), then any other label in the given order."""
    def rank(d: EvalDir) -> int:
        kind = model_kind(d.label)
        return KINDS.index(kind) if kind else len(KINDS)
    return sorted(dirs, key=rank)


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    slug, i = base, 2
    while slug.lower() in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug.lower())
    return slug


# --- reference clips -------------------------------------------------------------------------

class _References:
    """Reference audio per clip name, looked up in audio files, audio folders or prepared data
    folders (whose clips hold the audio at the model rate)."""

    def __init__(self, sources: list[Path]):
        self.sources = sources

    def find(self, clips: Iterable[str]) -> dict[str, Path | tuple[np.ndarray, int]]:
        wanted = list(clips)
        found: dict[str, Path | tuple[np.ndarray, int]] = {}
        for src in self.sources:
            missing = [c for c in wanted if c not in found]
            if not missing:
                break
            found.update(self._lookup(src, set(missing)))
        missing = [c for c in wanted if c not in found]
        if missing:
            where = ", ".join(str(s) for s in self.sources)
            raise UserError(f"no reference audio for clip(s) {', '.join(missing[:5])} in {where}"
                            f"; give the reference folder with --references")
        return found

    @staticmethod
    def _lookup(src: Path, wanted: set[str]) -> dict[str, Path | tuple[np.ndarray, int]]:
        if (src / MANIFEST).is_file():
            manifest = read_manifest(src)
            rate = int(manifest["settings"]["sample_rate"])
            out: dict[str, Path | tuple[np.ndarray, int]] = {}
            for e in manifest.get("files", []):
                stem = Path(e["path"]).stem
                if stem in wanted and stem not in out:
                    with np.load(src / "clips" / e["clip"]) as z:
                        out[stem] = (z["audio"].astype(np.float32), rate)
            return out
        if src.is_dir():
            files: dict[str, Path | tuple[np.ndarray, int]] = {}
            for f in find_audio(src):
                if f.stem in wanted:
                    files.setdefault(f.stem, f)
            return files
        if src.is_file():
            return {k: src for k in (src.stem, src.name) if k in wanted}
        raise UserError(f"reference source {src} does not exist")


# --- speed ----------------------------------------------------------------------------------

def read_bench(path: str | Path) -> dict[str, Speed]:
    """Model name -> end-to-end speed from ``fastddsp bench --json`` (fewest threads)."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"bench file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path} is not a `fastddsp bench --json` file (not a list of rows)")
    best: dict[str, tuple[int, Speed]] = {}
    for r in rows:
        if r.get("name") != "end-to-end" or not isinstance(r.get("model"), str):
            continue
        rtf, threads = _number(r.get("realtime_factor")), int(_number(r.get("threads")) or 1)
        if not math.isfinite(rtf):
            continue
        how = (f"end-to-end synthesis from f0 and loudness, {threads} thread"
               f"{'s' if threads > 1 else ''}, {_number(r.get('seconds_of_audio')):g} s of audio, "
               f"median of {r.get('runs', '?')} runs (fastddsp bench, {path.name})")
        for key in {r["model"], Path(r["model"]).stem}:
            if key not in best or threads < best[key][0]:
                best[key] = (threads, Speed(rtf, how))
    return {k: v for k, (_, v) in best.items()}


def measure_speed(label: str, seconds: float = 2.0, runs: int = 5) -> Speed | None:
    """End-to-end real-time factor of the model the label names (bundled name, file or
    preset), or None when the label names no model."""

    try:
        model = resolve(label)
    except UserError:
        return None
    timing = next(t for t in bench_model(model, seconds, runs) if t.name == "end-to-end")
    threads = torch.get_num_threads()
    return Speed(timing.realtime_factor,
                 f"end-to-end synthesis from f0 and loudness, timed by the report on the model "
                 f"each label names: {threads} thread{'s' if threads > 1 else ''}, {seconds:g} s "
                 f"of audio, median of {runs} runs")


# --- the page --------------------------------------------------------------------------------

def _is_previous_report(folder: Path) -> bool:
    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("generator") == GENERATOR


def _check_output(out: Path, inputs: Iterable[Path]) -> None:
    resolved = out.resolve()
    for p in inputs:
        p = p.resolve()
        if p == resolved or resolved in p.parents:
            raise UserError(f"{p} is inside the page folder {out}, which would be replaced")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_previous_report(out):
        raise UserError(f"{out} is not empty and holds no previous report: choose a new or "
                        f"empty folder")


def _fmt(value: float, template: str) -> str:
    return "—" if not math.isfinite(value) else template.format(value)


def _copy_audio(src: Path | tuple[np.ndarray, int], dst: Path) -> tuple[np.ndarray, int]:
    """Put the clip into the page as a wav the browser plays; return it as (mono, rate)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(src, tuple):
        audio, rate = src
        write_audio(dst, audio, rate)
        return audio, rate
    audio, rate = read_audio(src)
    if src.suffix.lower() == ".wav":
        shutil.copyfile(src, dst)
    else:
        write_audio(dst, audio, rate)
    return audio, rate


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:6px;
vertical-align:top;text-align:left}th[scope=row]{min-width:11em}.meta{font-weight:normal;
font-size:.8em;color:#555;margin-top:.3em}.meta div{white-space:nowrap}.cell audio{width:320px;
display:block}.cell img,.plot img{display:block;margin-top:4px}.score{font-size:.8em;color:#555}
.summary td{text-align:right}.missing{color:#999}caption{text-align:left;font-weight:bold}
.note{color:#555;max-width:60em}"""


def _page(rows: list[dict[str, Any]], clips: list[dict[str, Any]], pitch: str) -> str:
    e = html.escape

    def metrics(row: dict[str, Any]) -> str:
        if row["reference"]:
            return ""
        parts = [f"<div>{e(title)}: {_fmt(row['mean'][k], f)}</div>" for k, title, f in METRICS]
        speed = row["speed"]
        parts.append(f"<div title='{e(speed['how'])}'>speed: {speed['realtime_factor']:,.0f}× "
                     f"real time</div>" if speed else "<div>speed: not measured</div>")
        return f"<div class='meta'>{''.join(parts)}</div>"

    head = "".join(f"<th scope='col'>{e(c['name'])}</th>" for c in clips)
    body = []
    for row in rows:
        cells = []
        for c in clips:
            cell = row["cells"].get(c["name"])
            if cell is None:
                cells.append("<td class='cell missing'>not in this eval</td>")
                continue
            score = cell.get("spectral_distance")
            score_html = ("" if score is None else
                          f"<div class='score'>spectral distance {_fmt(score, '{:.3f}')}</div>")
            cells.append(
                f"<td class='cell'><audio controls preload='none' src='{e(cell['audio'])}'>"
                f"</audio>{score_html}<img src='{e(cell['spectrogram'])}' width='320' "
                f"height='150' alt='spectrogram of {e(row['label'])}, {e(c['name'])}'></td>")
        body.append(f"<tr class='audio-row' data-row='{e(row['label'])}'><th scope='row'>"
                    f"{e(row['label'])}{metrics(row)}</th>{''.join(cells)}</tr>")
    plots = "".join(f"<td class='plot'><img src='{e(c['plot'])}' width='360' height='240' "
                    f"alt='f0 and loudness of {e(c['name'])}'></td>" for c in clips)
    body.append(f"<tr class='plot-row'><th scope='row'>f0 / loudness<div class='meta'>"
                f"pitch tracker {e(pitch)}; f0 on voiced frames</div></th>{plots}</tr>")

    summary = []
    for row in rows:
        if row["reference"]:
            continue
        vals = "".join(f"<td>{_fmt(row['mean'][k], f)}</td>" for k, _, f in METRICS)
        speed = row["speed"]
        sp = (f"<td title='{e(speed['how'])}'>{speed['realtime_factor']:,.0f}×</td>" if speed
              else "<td class='missing'>—</td>")
        summary.append(f"<tr><th scope='row'>{e(row['label'])}</th>{vals}{sp}</tr>")
    titles = "".join(f"<th scope='col'>{e(t)}</th>" for _, t, _ in METRICS)
    hows = sorted({r["speed"]["how"] for r in rows if r["speed"]})
    speed_note = ("<p class='note'>Speed (audio seconds per wall-clock second): "
                  + "; ".join(e(h) for h in hows) + ".</p>") if hows else ""
    n_models = len(rows) - 1
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastddsp listening page</title><link rel="icon" href="data:,">
<style>{_STYLE}</style></head><body>
<h1>Listening page: {n_models} model{'s' if n_models != 1 else ''} × {len(clips)} clip\
{'s' if len(clips) != 1 else ''}</h1>
<p class="note">Rows: the reference recording, then each model's resynthesis of it from the
reference's pitch and loudness. Columns: clips. Metrics (means over clips, lower is better;
both signals at -20 LUFS): multi-scale spectral distance, loudness L1 on audible frames, f0 L1
and the share of frames off by more than a semitone on confidently voiced frames.</p>
<table class="summary"><caption>Scores</caption><thead><tr><th></th>{titles}
<th scope="col">speed (× real time)</th></tr></thead><tbody>{''.join(summary)}</tbody></table>
{speed_note}
<table class="grid"><thead><tr><th></th>{head}</tr></thead>
<tbody>{''.join(body)}</tbody></table>
</body></html>
"""


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities -> null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _swap_into_place(new: Path, out: Path) -> None:
    """Rename the finished folder ``new`` to ``out``; a previous ``out`` is removed only once
    the new one is in place (and put back if that fails)."""
    if not out.exists():
        new.rename(out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    out.rename(trash / "previous")
    try:
        new.rename(out)
    except BaseException:
        (trash / "previous").rename(out)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def build_report(eval_dirs: Iterable[str | Path], out_dir: str | Path,
                 references: str | Path | None = None, bench: str | Path | None = None,
                 measure: bool = False, pitch: str = "crepe-tiny",
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write the listening page for ``eval_dirs`` into ``out_dir`` (see the module doc)."""
    tracker = get_tracker(pitch)
    dirs = order_rows([load_eval_dir(d) for d in eval_dirs])
    if not dirs:
        raise UserError("give at least one eval folder")
    out = Path(out_dir)
    sources = _reference_sources(dirs, references)
    _check_output(out, [d.path for d in dirs] + sources + ([Path(bench)] if bench else []))
    speeds_from_bench = read_bench(bench) if bench is not None else {}
    clip_names = list(dict.fromkeys(c for d in dirs for c in d.clips))
    ref_audio = _References(sources).find(clip_names)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp's 0700 -> what mkdir would give
        taken: set[str] = set()
        clip_slugs = {c: _slug(c, taken) for c in clip_names}
        rows = _rows(dirs, speeds_from_bench, measure, progress)
        clips_out = []
        for c in clip_names:
            if progress:
                progress(f"clip {c}")
            sources_of = [ref_audio[c], *(d.audio_file(c) if c in d.clips else None
                                          for d in dirs)]
            curves = _clip_cells(c, clip_slugs[c], rows, dirs, sources_of, tmp, pitch,
                                 tracker.voicing_threshold)
            rel_plot = f"img/f0-loudness-{clip_slugs[c]}.png"
            (tmp / rel_plot).write_bytes(features_png(curves))
            clips_out.append({"name": c, "plot": rel_plot})
        (tmp / "index.html").write_text(_page(rows, clips_out, pitch), encoding="utf-8")
        meta = {"generator": GENERATOR, "pitch_tracker": pitch, "clips": clips_out,
                "rows": [{k: v for k, v in row.items() if k != "slug"} for row in rows]}
        (tmp / "report.json").write_text(json.dumps(_finite(meta), indent=1), encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(out, [r["label"] for r in rows], clip_names,
                        {r["label"]: (Speed(**r["speed"]) if r["speed"] else None)
                         for r in rows[1:]})


def _reference_sources(dirs: list[EvalDir], references: str | Path | None) -> list[Path]:
    """Where the reference clips are: ``references`` if given, else what the eval folders
    recorded."""
    if references is not None:
        if not Path(references).exists():
            raise UserError(f"--references {references} does not exist")
        return [Path(references)]
    sources = list(dict.fromkeys(Path(d.origin["references"]) for d in dirs
                                 if "references" in d.origin))
    if not sources:
        raise UserError("these eval folders do not record their reference clips (written "
                        "by an older fastddsp eval): give them with --references")
    return sources


def _rows(dirs: list[EvalDir], speeds_from_bench: dict[str, Speed], measure: bool,
          progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """The page's rows: the reference, then one per eval folder (label, slug, mean score,
    speed from ``--bench`` or measured); cells are filled per clip."""
    taken = {"reference"}
    row_slugs = [_slug(d.label, taken) for d in dirs]
    labels = [d.label for d in dirs]
    dup = {lab for lab in labels if labels.count(lab) > 1}
    rows: list[dict[str, Any]] = [{"label": "reference", "reference": True,
                                   "slug": "reference", "cells": {}, "speed": None}]
    for i, d in enumerate(dirs):
        speed = speeds_from_bench.get(d.label)
        if speed is None and measure:
            if progress:
                progress(f"timing {d.label}")
            speed = measure_speed(d.label)
        rows.append({"label": f"{d.label} ({d.path.name})" if d.label in dup else d.label,
                     "reference": False, "slug": row_slugs[i], "eval_dir": str(d.path),
                     "mean": d.mean, "cells": {},
                     "speed": None if speed is None else {
                         "realtime_factor": speed.realtime_factor, "how": speed.how}})
    return rows


def _clip_cells(clip: str, slug: str, rows: list[dict[str, Any]], dirs: list[EvalDir],
                sources: list[Path | tuple[np.ndarray, int] | None], tmp: Path, pitch: str,
                voicing_threshold: float) -> list[Curve]:
    """One clip's cells (audio copy, spectrogram, score) in every row that has it, and their
    f0/loudness curves for the clip's plot."""
    curves = []
    for r, row in enumerate(rows):
        src = sources[r]
        if src is None:
            continue
        rel_audio = f"audio/{row['slug']}/{slug}.wav"
        audio, rate = _copy_audio(src, tmp / rel_audio)
        rel_spec = f"img/spec-{row['slug']}-{slug}.png"
        (tmp / "img").mkdir(exist_ok=True)
        (tmp / rel_spec).write_bytes(spectrogram_png(audio, rate))
        cell: dict[str, Any] = {"audio": rel_audio, "spectrogram": rel_spec,
                                "seconds": audio.size / rate}
        if r > 0:
            cell["spectral_distance"] = _number(dirs[r - 1].clips[clip].get("spectral_distance"))
        row["cells"][clip] = cell
        feats = extract_features(audio, rate, pitch=pitch, frame_rate=PLOT_FRAME_RATE,
                                 loudness_rate=PLOT_LOUDNESS_RATE)
        curves.append(Curve(row["label"], feats, voicing_threshold))
    return curves
