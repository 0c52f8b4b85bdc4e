"""Polyphony through the commands: render every note of every track, live from a MIDI file
or a keyboard, polyphonic transfer."""

import importlib.util
import sys
import types

import mido
import numpy as np
import pytest
import soundfile as sf

from fastddsp.cli.main import run
from fastddsp.models import load
from fastddsp.pipelines.render import read_score_tracks, render_score_chunks
from fastddsp.pipelines.score import Note, note_events
from fastddsp.pipelines.voices import render_tracks
from tests.realtime.test_live import fake_sounddevice

SR = 16000


def quartet(path, seconds: float = 2.0):
    """Two named tracks of two-note chords with a bend; tempo 120."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    for name, ch, chord in (("Violin", 0, (76, 79)), ("Cello", 1, (57, 64))):
        beats = int(seconds * 2)
        t = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        t += [mido.Message("note_on", note=n, velocity=100, channel=ch, time=0) for n in chord]
        t.append(mido.Message("pitchwheel", pitch=2048, channel=ch, time=480 * beats // 2))
        t += [mido.Message("note_off", note=n, channel=ch, time=480 * beats // 2 if i == 0 else 0)
              for i, n in enumerate(chord)]
        mid.tracks.append(t)
    mid.save(path)
    return path


def test_render_plays_every_track_with_its_own_model(tmp_path, capsys):
    score = quartet(tmp_path / "q.mid")
    out = tmp_path / "q.wav"
    assert run(["render", str(score), "-o", str(out), "--model", "cello=violin-cnn,violin-tiny"]
               ) == 0
    assert "4 notes in 2 tracks" in capsys.readouterr().out
    y, sr = sf.read(out)
    tracks = read_score_tracks(score)
    want = np.concatenate(list(render_score_chunks(
        tracks, [load("violin-tiny"), load("violin-cnn")])))
    assert sr == SR and y.size == want.size
    spec = np.abs(np.fft.rfft(y[int(1.2 * SR): int(1.9 * SR)]))
    f = np.fft.rfftfreq(int(0.7 * SR), 1 / SR)
    bent = 2 ** (0.5 / 12)  # a quarter of the +-2 semitone range: +0.5 st
    for midi in (76, 79, 57, 64):   # every note sounds, bent
        hz = 440 * 2 ** ((midi - 69) / 12) * bent
        assert spec[np.abs(f - hz) < 6].max() > 10 * np.median(spec), midi


def test_render_refuses_a_track_the_score_lacks_and_mono_keeps_one_line(tmp_path, capsys):
    score = quartet(tmp_path / "q.mid")
    assert run(["render", str(score), "-o", str(tmp_path / "x.wav"), "--model",
                "viola=violin-cnn"]) == 2
    err = capsys.readouterr().err
    assert "viola" in err and "1=Violin, 2=Cello" in err and err.count("\n") == 1
    assert not (tmp_path / "x.wav").exists()
    assert run(["render", str(score), "-o", str(tmp_path / "m.wav"), "--mono"]) == 0
    assert "4 notes in one line" in capsys.readouterr().out


def test_live_midi_file_is_the_offline_rendering(tmp_path, capsys):
    score = quartet(tmp_path / "q.mid", 1.0)
    out = tmp_path / "live.wav"
    assert run(["live", "--midi-file", str(score), "--output-file", str(out), "--block",
                "100"]) == 0
    text = capsys.readouterr().out
    assert "latency 64 samples" in text and "blocks of 6.2 ms" in text
    y, _ = sf.read(out, dtype="float32")
    merged = sorted((e for t in read_score_tracks(score) for e in t.events),
                    key=lambda e: e.time_s)
    want = np.concatenate(list(render_tracks([(merged, load("violin-tiny"))])))
    # both written as every output is (fade-in, limiter): compare past the 5 ms fade
    assert y.size == want.size
    np.testing.assert_allclose(y[200:], np.clip(want[200:], -1, 1), atol=1e-4)


def test_live_midi_needs_a_midi_system_and_says_so(tmp_path, capsys, monkeypatch):
    import fastddsp.realtime.midi as midi

    monkeypatch.setattr(midi, "midi_ports", lambda: [])
    monkeypatch.setitem(sys.modules, "sounddevice", types.ModuleType("sounddevice"))
    assert run(["live", "--midi"]) == 2
    assert "no MIDI input port" in capsys.readouterr().err
    assert run(["live", "--midi", "--midi-file", "x.mid"]) == 2
    assert run(["live", "--midi-file", "x.mid", "--input-file", "y.wav"]) == 2


class FakePort:
    """A MIDI input port: the test calls its callback (as mido's thread would)."""

    def __init__(self, callback):
        self.callback, self.closed = callback, False

    def close(self):
        self.closed = True


def test_a_keyboard_plays_chords_with_pedal_and_bend(monkeypatch):
    import fastddsp.realtime.midi as midi

    size, captured, ports = 256, [], []
    messages = {5: [mido.Message("note_on", note=60, velocity=100),
                    mido.Message("note_on", note=64, velocity=100),
                    mido.Message("note_on", note=67, velocity=100)],
                40: [mido.Message("control_change", control=64, value=127),
                     mido.Message("note_off", note=60), mido.Message("note_off", note=64),
                     mido.Message("note_off", note=67)],
                70: [mido.Message("pitchwheel", pitch=8191)],
                100: [mido.Message("control_change", control=64, value=0)]}

    def before_block(i):
        for msg in messages.get(i, []):
            ports[0].callback(msg)

    def open_keyboard(name, callback):
        ports.append(FakePort(callback))
        return ports[0]

    monkeypatch.setattr(midi, "open_keyboard", open_keyboard)
    silence = [np.zeros(size, np.float32)] * 140          # an output-only device's blocks
    monkeypatch.setitem(sys.modules, "sounddevice",
                        fake_sounddevice(silence, set(), captured, before_block=before_block))
    state = midi.run_keyboard(load("violin-tiny"), "", voices=8, block_size=size, seconds=5)
    y = np.concatenate(captured)
    assert state.blocks == 140 and ports[0].closed
    # silence before the chord, the chord held by the pedal, released after it lifts
    rms = [np.sqrt(np.mean(y[a * size: b * size] ** 2)) for a, b in
           ((0, 5), (20, 40), (50, 70), (125, 140))]
    assert rms[0] == 0.0 and rms[2] > 0.5 * rms[1] and rms[3] < 0.1 * rms[1]
    spec = np.abs(np.fft.rfft(y[80 * size: 100 * size]))
    f = np.fft.rfftfreq(20 * size, 1 / SR)
    for midi_note in (62, 66, 69):  # C E G bent up a whole tone: D F# A
        hz = 440 * 2 ** ((midi_note - 69) / 12)
        assert spec[np.abs(f - hz) < 8].max() > 20 * np.median(spec), midi_note


needs_basic_pitch = pytest.mark.skipif(
    importlib.util.find_spec("basic_pitch") is None,
    reason="Basic Pitch's network is not installed (pip install --no-deps basic-pitch)")


@needs_basic_pitch
def test_transcription_finds_the_notes_of_rendered_chords():
    from fastddsp.features.transcribe import note_scores, transcribe

    rng = np.random.default_rng(1)
    notes, t = [], 0.3
    for _ in range(10):
        chord = rng.choice(np.arange(55, 84), size=int(rng.integers(1, 4)), replace=False)
        d = float(rng.uniform(0.3, 0.8))
        notes += [Note(int(c), t, d, 0.8) for c in chord]
        t += d + float(rng.uniform(0.05, 0.3))
    y = np.concatenate(list(render_tracks([(note_events(notes), load("violin-cnn"))])))
    found = transcribe(y, SR)
    assert note_scores(notes, found)[2] >= 0.85
    # the voices' vibrato (25 cents) is all the bend there is
    assert all(abs(n.bends).max() < 0.4 for n in found if n.bends.size)


@needs_basic_pitch
def test_transfer_poly_plays_the_transcribed_chords(tmp_path, capsys):
    chord = note_events([Note(60, 0.2, 1.5), Note(64, 0.2, 1.5), Note(67, 0.2, 1.5)])
    src = tmp_path / "chord.wav"
    sf.write(src, np.concatenate(list(render_tracks([(chord, load("violin-cnn"))]))), SR)
    out = tmp_path / "t.wav"
    assert run(["transfer", "--poly", str(src), "-o", str(out), "--model", "trumpet-tiny",
                "--octave", "0"]) == 0
    text = capsys.readouterr().out
    assert "3 notes (up to 3 at once) played by trumpet-tiny" in text, text
    y, _ = sf.read(out)
    spec = np.abs(np.fft.rfft(y[int(0.6 * SR): int(1.4 * SR)]))
    f = np.fft.rfftfreq(int(0.8 * SR), 1 / SR)
    for midi_note in (60, 64, 67):
        hz = 440 * 2 ** ((midi_note - 69) / 12)
        assert spec[np.abs(f - hz) < 6].max() > 20 * np.median(spec), midi_note
    assert run(["transfer", "--poly", str(src), "-o", str(tmp_path / "u.wav"), "--pitch",
                "fast"]) == 2
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, np.float32), SR)
    assert run(["transfer", "--poly", str(silent), "-o", str(tmp_path / "s.wav")]) == 2
    assert "silent" in capsys.readouterr().err and not (tmp_path / "s.wav").exists()


def test_transfer_poly_without_basic_pitch_says_how_to_install(tmp_path, capsys, monkeypatch):
    import fastddsp.features.transcribe as tr

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "basic_pitch" else real(name, *a))
    tr._session.cache_clear()
    src = tmp_path / "a.wav"
    sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR), SR)
    assert run(["transfer", "--poly", str(src), "-o", str(tmp_path / "o.wav")]) == 2
    assert "pip install --no-deps basic-pitch" in capsys.readouterr().err
    tr._session.cache_clear()


def test_note_scores_match_key_and_onset_once():
    from fastddsp.features.transcribe import TranscribedNote, note_scores

    ref = [Note(60, 0.0, 1.0), Note(64, 0.0, 1.0), Note(67, 1.0, 1.0)]
    found = [TranscribedNote(60, 0.03, 1.0, 0.8), TranscribedNote(60, 0.01, 1.0, 0.8),
             TranscribedNote(64, 0.2, 1.0, 0.8), TranscribedNote(67, 0.96, 2.0, 0.8)]
    p, r, f = note_scores(ref, found)   # 60 once (the closer), 64 too late, 67 in time
    assert (p, r) == (0.5, 2 / 3) and f == pytest.approx(4 / 7)
