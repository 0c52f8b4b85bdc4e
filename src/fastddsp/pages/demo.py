"""`fastddsp demo`: the main job on bundled defaults. Renders a built-in melody and transfers a
built-in sung phrase through every bundled model (before any model is bundled: the untrained
presets) into a folder with an ``index.html`` laid out like the thesis' audio page: rows are
models, columns are clips, an audio player in each cell, f0/loudness plots per clip."""

from __future__ import annotations

import html
import platform
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.signal
import torch

from ..atomic import atomic_path, write_text_atomic
from ..features import extract_features
from ..features.frames import Features
from ..io import write_audio
from ..models.config import PRESETS
from ..models.model import Model
from ..models.registry import bundled_models, load
from ..pipelines.output import write_output
from ..pipelines.render import render_notes
from ..pipelines.score import DEMO_CHORDS, DEMO_MELODY, demo_voice, note_events, notes_to_features
from ..pipelines.transfer import transfer_features
from ..pipelines.voices import render_tracks

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


THESIS_ORDER = ("full", "cnn", "tiny", "cnn-q", "tiny-q")
KEY = ("full: GRU decoder (DDSP-full) · cnn: dilated CNN (DDSP-CNN) · tiny: causal 8-channel "
       "CNN (DDSP-CNN-Tiny) · -q: the same decoder with int8 static quantization · -48k: trained "
       "and played at 48 kHz (the others at 16 kHz) · params: the "
       "decoder's parameters · speed: how fast this page's melody renders end to end (median of "
       "three), in seconds of audio per second, on this machine")


def row_order(name: str) -> tuple[str, bool, int, str]:
    """Per instrument, the thesis' order of decoders, the 48 kHz models after the 16 kHz ones
    in the same order; anything else after, by name."""
    instrument, _, kind = name.partition("-")
    high_rate = "-48k" in kind
    kind = kind.replace("-48k", "")
    rank = THESIS_ORDER.index(kind) if kind in THESIS_ORDER else len(THESIS_ORDER)
    return (instrument, high_rate, rank, name)


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB image ``[height, width, 3]`` as a PNG file (no imaging library needed)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgb, np.uint8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def spectrogram_image(audio: np.ndarray, sample_rate: int, width: int = 320,
                      height: int = 96) -> bytes:
    """A small log-magnitude spectrogram (0 Hz at the bottom, Nyquist at the top; 70 dB of
    range) as a PNG."""
    _, _, spec = scipy.signal.stft(np.asarray(audio, np.float64), sample_rate, nperseg=512,
                                   noverlap=384)
    db = 20 * np.log10(np.abs(spec) + 1e-9)
    db = np.clip((db - (db.max() - 70.0)) / 70.0, 0.0, 1.0)[::-1]          # top: Nyquist
    rows = np.linspace(0, db.shape[0] - 1, height).astype(int)
    cols = np.linspace(0, db.shape[1] - 1, width).astype(int)
    v = db[np.ix_(rows, cols)]
    rgb = np.stack([v ** 0.5, v ** 1.5, 0.35 + 0.65 * v ** 3], -1) * 255    # dark blue -> white
    return png_bytes(rgb.astype(np.uint8))


def _features_plots(feats: Features, adjusted: Features | None = None) -> str:
    f0 = [(feats.f0_hz, "#1f77b4", "input f0")]
    ld = [(feats.loudness_db, "#1f77b4", "input loudness")]
    if adjusted is not None:
        f0.append((adjusted.f0_hz, "#d62728", "adjusted f0"))
        ld.append((adjusted.loudness_db, "#d62728", "adjusted loudness"))
    return svg_plot(f0, "f0", log=True) + "<br>" + svg_plot(ld, "loudness dB")


@dataclass
class _Row:
    name: str
    melody: str           # file names in the page's folder
    voice: str
    chords: str
    parameters: int
    int8: bool
    speed: float          # melody seconds per wall second
    adjusted: Features


def _render_row(name: str, model: Model, out: Path, voice: np.ndarray,
                voice_feats: Features) -> tuple[_Row, list[Path]]:
    mel = render_notes(list(DEMO_MELODY), model)  # also the warm-up (a runtime's first call)
    times = []
    for _ in range(3):  # the median of three: this machine may be busy
        start = time.perf_counter()
        render_notes(list(DEMO_MELODY), model)
        times.append(time.perf_counter() - start)
    speed = mel.size / model.sample_rate / max(float(np.median(times)), 1e-9)
    feats = voice_feats if model.sample_rate == SR else extract_features(
        voice, SR, pitch="crepe-tiny", frame_rate=model.frame_rate,
        loudness_rate=model.sample_rate)
    octave = "auto" if model.stats.get("pitch_midi") else 0
    loud = "auto" if model.stats.get("loudness_db") else "none"
    chunks, _, adjusted = transfer_features(feats, model, octave=octave, loudness=loud,
                                            pitch="crepe-tiny")
    tr = np.concatenate(list(chunks))
    chords = np.concatenate(list(render_tracks([(note_events(DEMO_CHORDS), model)])))
    files = [out / f"melody.{name}.wav", out / f"voice.{name}.wav", out / f"chords.{name}.wav"]
    clips = ((mel, files[0]), (tr, files[1]), (chords, files[2]))
    for audio, wav in clips:  # as every output: limited, faded in
        write_output(wav, iter([audio]), model.sample_rate)
    for audio, wav in clips:
        png = out / f"{wav.stem}.png"
        with atomic_path(png) as tmp:
            tmp.write_bytes(spectrogram_image(audio, model.sample_rate))
        files.append(png)
    return _Row(name, files[0].name, files[1].name, files[2].name, model.decoder_parameters,
                model.is_quantized, speed, adjusted), files


def _cell(wav: str, plots: str = "") -> str:
    src = html.escape(wav)
    image = html.escape(wav.removesuffix(".wav") + ".png")
    return (f"<td><audio controls preload='none' src='{src}'></audio><br>"
            f"<img src='{image}' width='320' height='96' alt='spectrogram of {src}'>"
            f"{'<br>' + plots if plots else ''}</td>")


CHORDS_TEXT = ("D, G over D, A, D: three or four notes at once, a moving top voice over held "
               "notes; each note a voice of the same model, all in one room")


def _page(rows: list[_Row], melody: Features, voice_wav: str, voice_feats: Features,
          bundled: bool) -> str:
    head = ("<tr><th></th><th>built-in melody (score → audio)</th>"
            "<th>sung phrase → instrument (timbre transfer)</th>"
            "<th>chords (polyphony: a voice per note)</th></tr>")
    ref = (f"<tr><th>input</th><td>{_features_plots(melody)}</td>"
           f"{_cell(voice_wav, _features_plots(voice_feats))}<td>{CHORDS_TEXT}</td></tr>")
    body = "".join(
        f"<tr><th>{html.escape(r.name)}<br><small>{r.parameters:,} params"
        f"{' (int8)' if r.int8 else ''}<br>speed {r.speed:,.0f}x real time</small></th>"
        f"{_cell(r.melody)}{_cell(r.voice, _features_plots(voice_feats, r.adjusted))}"
        f"{_cell(r.chords)}</tr>"
        for r in rows)
    note = "" if bundled else ("<p class='warn'>No pretrained model is bundled in this "
                               "installation: these rows are untrained presets, so they do not "
                               "sound like an instrument.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fastddsp demo</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:6px;vertical-align:top}}th{{text-align:left}}
.warn{{color:#a00}}</style></head><body>
<h1>fastddsp demo</h1>{note}
<p>Rows: models, per instrument in the thesis' order. Columns: clips. {html.escape(KEY)}
({platform.machine()}, {torch.get_num_threads()} threads). The plots show the pitch and
loudness each model was given (red: the sung phrase adjusted to that model's training data).
Spectrograms: 0 Hz at the bottom to half the sample rate at the top.</p>
<table>{head}{ref}{body}</table></body></html>
"""


def run_demo(out_dir: str | Path) -> DemoResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bundled = bundled_models()
    if bundled:
        models = [(name, load(name)) for name in sorted(bundled, key=row_order)]
    else:
        models = [(f"{name}-untrained", Model.from_preset(name)) for name in PRESETS]
    voice = demo_voice()
    voice_wav = write_audio(out / "voice.input.wav", voice, SR)
    files = [voice_wav]
    with atomic_path(out / "voice.input.png") as tmp:
        tmp.write_bytes(spectrogram_image(voice, SR))
    files.append(out / "voice.input.png")
    voice_feats = extract_features(voice, SR, pitch="crepe-tiny", frame_rate=250.0)
    rows = []
    for name, model in models:
        row, written = _render_row(name, model, out, voice, voice_feats)
        rows.append(row)
        files += written
    page = _page(rows, notes_to_features(DEMO_MELODY, 250.0), voice_wav.name, voice_feats,
                 bool(bundled))
    files.append(write_text_atomic(out / "index.html", page))
    return DemoResult(out, [r.name for r in rows], files, bool(bundled))
