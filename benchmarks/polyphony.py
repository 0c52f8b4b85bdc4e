"""Polyphony: how many voices play in real time, note-on latency, a string quartet offline,
and polyphonic transcription (speed, note F-measure). One thread, medians, every ratio measured
in this one run.

    .venv/bin/python benchmarks/polyphony.py [--threads 1] [--quartet-seconds 180]

1. voices: ``PolyStream`` with N voices all sounding (held notes with vibrato), 256-sample
   blocks (16 ms at 16 kHz): median and p99 time per block for N = 8 ... 128; the most voices
   whose p99 stays under the block's duration;
2. note-on to sound: the declared bound and the measured delay (first sample above -80 dBFS
   after ``note_on``, over 20 positions within a block);
3. a 4-part string-quartet MIDI (made here, deterministic: chords, passing notes, double
   stops, a pitch bend) of 3 minutes, rendered with four models, through ``fastddsp render``
   with the process start and through the API;
4. ``transfer --poly``'s transcription on rendered MIDI (chords of 1-3 notes with onsets
   50-300 ms apart, played by violin-cnn, trumpet-cnn and a piano-like additive tone that is
   not ours): note F-measure (onset within 50 ms, same key) and speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido
import numpy as np
import torch

from fastddsp.models.registry import load
from fastddsp.pipelines.score import Note, note_events
from fastddsp.pipelines.voices import render_tracks
from fastddsp.realtime.poly import PolyStream

SR = 16000
BLOCK = 256


def voices_in_real_time(name: str, counts: list[int], blocks: int = 400) -> list[tuple]:
    model = load(name)
    rows = []
    for n in counts:
        stream = PolyStream(model, n)
        for v in range(n):
            stream.note_on(48 + (v * 7) % 40, 0.6 + 0.4 * (v % 3) / 2, v % 16)
        for _ in range(40):
            stream.play(BLOCK)
        times = []
        for _ in range(blocks):
            t0 = time.perf_counter()
            stream.play(BLOCK)
            times.append(time.perf_counter() - t0)
        t = np.asarray(times) * 1e3
        rows.append((n, float(np.median(t)), float(np.percentile(t, 99))))
    return rows


def note_latency(name: str) -> tuple[int, float]:
    model = load(name)
    delays = []
    for k in range(20):
        stream = PolyStream(model, 2)
        stream.play(BLOCK * 4 + 13 * k)         # an arbitrary position within a frame
        stream.note_on(69, 0.8)
        out = np.concatenate([stream.play(64) for _ in range(40)])
        delays.append(int(np.argmax(np.abs(out) > 1e-4)))
    return stream.max_note_latency, float(np.median(delays))


PARTS = (("Violin I", 0, 76), ("Violin II", 1, 69), ("Viola", 2, 62), ("Cello", 3, 55))
PROGRESSION = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7), (9, 12, 16), (2, 5, 9),
               (7, 11, 14), (0, 4, 7))


def quartet_midi(path: Path, seconds: float) -> None:
    """Four parts over a repeating progression, two chords a bar at 90 bpm: each part takes
    a chord tone near its register, a passing note now and then, the cello a double stop at
    each bar, the first violin a bend at each phrase end."""
    rng = np.random.default_rng(7)
    tpb, beat = 480, 60 / 90
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=666667)]))
    n_chords = int(seconds / (2 * beat))
    for name, ch, centre in PARTS:
        events = []  # (tick, message)
        for i in range(n_chords):
            chord = PROGRESSION[i % len(PROGRESSION)]
            tones = [centre - 12 + c + 12 * o for c in chord for o in (0, 1, 2)]
            note = min(tones, key=lambda t: abs(t - centre))
            start = i * 2 * tpb
            if rng.random() < 0.3:  # a passing note halfway
                events += [(start, "on", note), (start + tpb - 20, "off", note),
                           (start + tpb, "on", note + 2), (start + 2 * tpb - 20, "off", note + 2)]
            else:
                events += [(start, "on", note), (start + 2 * tpb - 20, "off", note)]
            if name == "Cello" and i % 2 == 0:
                events += [(start, "on", note - 7), (start + 2 * tpb - 20, "off", note - 7)]
            if name == "Violin I" and i % 8 == 7:
                events += [(start + tpb, "bend", 2048), (start + 2 * tpb - 30, "bend", 0)]
        events.sort(key=lambda e: (e[0], e[1] != "off"))
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        last = 0
        for tick, kind, value in events:
            if kind == "bend":
                msg = mido.Message("pitchwheel", pitch=value, channel=ch)
            else:
                msg = mido.Message("note_on" if kind == "on" else "note_off", note=value,
                                   velocity=80, channel=ch)
            track.append(msg.copy(time=tick - last))
            last = tick
        mid.tracks.append(track)
    mid.save(path)


QUARTETS = {  # four models each: CNNs and tinies mixed, and the small models only
    "cnn + tiny": "violin i=violin-cnn,violin ii=violin-tiny,viola=trumpet-tiny,"
                  "cello=trumpet-cnn",
    "tiny + tiny-q": "violin i=violin-tiny,violin ii=violin-tiny-q,viola=trumpet-tiny,"
                     "cello=trumpet-tiny-q",
}


def quartet(seconds: float, threads: int, models: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        score, out = Path(tmp) / "quartet.mid", Path(tmp) / "quartet.wav"
        quartet_midi(score, seconds)
        from fastddsp.pipelines.render import read_score_tracks, track_models

        tracks = read_score_tracks(score)
        names = track_models(tracks, models)
        loaded = [load(n) for n in names]
        cli, api = [], []
        for _ in range(3):
            out.unlink(missing_ok=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fastddsp", "render", str(score), "-o",
                            str(out), "--model", models, "-q"], check=True,
                           capture_output=True,
                           env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            cli.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _chunk in render_tracks([(t.events, m) for t, m in zip(tracks, loaded,
                                                                       strict=True)]):
                pass
            api.append(time.perf_counter() - t0)
    return {"cli": seconds / statistics.median(cli), "api": seconds / statistics.median(api),
            "notes": sum(e.kind == "on" for t in tracks for e in t.events)}


def chords(seed: int, count: int = 40) -> list[Note]:
    rng = np.random.default_rng(seed)
    notes, t = [], 0.3
    for _ in range(count):
        chord = rng.choice(np.arange(55, 84), size=int(rng.integers(1, 4)), replace=False)
        d = float(rng.uniform(0.3, 0.9))
        notes += [Note(int(c), t, d, float(rng.uniform(0.5, 1.0))) for c in chord]
        t += d + float(rng.uniform(0.05, 0.3))
    return notes


def piano_like(notes: list[Note]) -> np.ndarray:
    """Struck strings, roughly: inharmonic partials (B = 1e-4) decaying faster up high."""
    end = max(n.start_s + n.duration_s for n in notes) + 1.0
    y = np.zeros(int(end * SR))
    for n in notes:
        f0 = 440 * 2 ** ((n.midi - 69) / 12)
        length = int((n.duration_s + 0.3) * SR)
        t = np.arange(length) / SR
        damp = np.clip(1 - (t - n.duration_s) / 0.3, 0, 1)
        tone = sum(np.sin(2 * np.pi * f0 * k * np.sqrt(1 + 1e-4 * k * k) * t)
                   * np.exp(-t * (1.5 + 0.8 * k)) / k
                   for k in range(1, 12) if f0 * k < SR / 2)
        a = int(n.start_s * SR)
        y[a: a + length] += n.velocity * tone * damp
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def transcription() -> list[tuple[str, float, float, float, float]]:
    from fastddsp.features.transcribe import note_scores, transcribe

    rows = []
    for label, seed in (("violin-cnn", 11), ("trumpet-cnn", 12), ("piano-like", 13)):
        notes = chords(seed)
        if label == "piano-like":
            audio = piano_like(notes)
        else:
            audio = np.concatenate(list(render_tracks([(note_events(notes), load(label))])))
        t0 = time.perf_counter()
        found = transcribe(audio, SR)
        speed = audio.size / SR / (time.perf_counter() - t0)
        rows.append((label, *note_scores(notes, found), speed))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quartet-seconds", type=float, default=180.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"polyphony benchmark: {args.threads} thread(s), blocks of {BLOCK} samples "
          f"({1000 * BLOCK / SR:.0f} ms)")
    budget = 1000 * BLOCK / SR
    for name, counts in (("violin-tiny", [8, 16, 32, 64, 96, 128]),
                         ("violin-cnn", [4, 8, 16, 24, 32]),
                         ("violin-full", [1, 2, 4, 8])):
        rows = voices_in_real_time(name, counts)
        ok = [n for n, _, p99 in rows if p99 < budget]
        print(f"{name}: " + ", ".join(f"{n} voices {med:.2f}/{p99:.2f} ms" for n, med, p99
                                      in rows) + f"  (median/p99) -> {max(ok, default=0)} "
              f"voices with p99 under {budget:.0f} ms")
    for name in ("violin-tiny", "violin-cnn"):
        declared, measured = note_latency(name)
        print(f"note-on to sound, {name}: declared <= {declared} samples "
              f"({1000 * declared / SR:.1f} ms), measured median {measured:.0f} samples "
              f"({1000 * measured / SR:.1f} ms)")
    for label, models in QUARTETS.items():
        q = quartet(args.quartet_seconds, args.threads, models)
        print(f"string quartet, {args.quartet_seconds:.0f} s, {q['notes']} notes, four models "
              f"({label}): `fastddsp render` {q['cli']:.0f}x real time (process start "
              f"included), API {q['api']:.0f}x")
    for label, p, r, f, speed in transcription():
        print(f"transcription of {label} chords: precision {p:.2f}, recall {r:.2f}, "
              f"F {f:.2f}; {speed:.0f}x real time")


if __name__ == "__main__":
    main()
