import re
import struct

import mido
import numpy as np
import pytest
import soundfile as sf

import fastddsp
from fastddsp.cli.main import run
from fastddsp.pages.demo import run_demo
from fastddsp.pipelines.score import demo_voice, parse_note, read_midi, read_text_score
from tests.pipelines.test_transfer import pure_model


def test_note_names():
    assert [parse_note(n) for n in ("A4", "C4", "C#5", "Eb3", "64")] == [69, 60, 73, 51, 64]
    with pytest.raises(ValueError):
        parse_note("H2")


def test_text_score():
    notes = read_text_score("# melody\nA4 0 0.5\nC#5 0.5 0.5 0.9  # loud\n\n76, 1.5, 1.0\n")
    assert [(n.midi, n.start_s, n.duration_s, n.velocity) for n in notes] == [
        (69, 0.0, 0.5, 0.8), (73, 0.5, 0.5, 0.9), (76, 1.5, 1.0, 0.8)]
    with pytest.raises(ValueError, match="line 1"):
        read_text_score("A4 0")


def write_midi(path, notes, tempo=500000, ticks=480):
    mid = mido.MidiFile(ticks_per_beat=ticks)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=tempo))
    for n in notes:
        tr.append(mido.Message("note_on", note=n, velocity=100, time=0))
        tr.append(mido.Message("note_off", note=n, velocity=0, time=ticks))
    mid.save(path)


def test_midi_tempo_is_honoured(tmp_path):
    write_midi(tmp_path / "m.mid", [60, 64, 67], tempo=250000)  # 240 bpm: 0.25 s per beat
    notes = read_midi(str(tmp_path / "m.mid"))
    assert [n.midi for n in notes] == [60, 64, 67]
    assert [n.start_s for n in notes] == pytest.approx([0, 0.25, 0.5])


def test_render_cli_plays_the_score(tmp_path):
    model = pure_model().save(tmp_path / "pure.fddsp")
    write_midi(tmp_path / "m.mid", [69, 76])
    out = tmp_path / "o.wav"
    assert run(["render", str(tmp_path / "m.mid"), "--model", str(model), "-o", str(out),
                "--sr", "44100"]) == 0
    audio, sr = sf.read(out)
    assert sr == 44100
    from fastddsp.features import extract_features
    f = extract_features(audio.astype(np.float32), sr, pitch="fast", frame_rate=100,
                         cache=False)
    assert np.median(f.f0_hz[10:45]) == pytest.approx(440.0, rel=0.005)
    assert np.median(f.f0_hz[60:95]) == pytest.approx(659.26, rel=0.005)
    (tmp_path / "bad.txt").write_text("not a score at all")
    assert run(["render", str(tmp_path / "bad.txt"), "--model", str(model), "-o",
                str(tmp_path / "x.wav")]) == 2
    assert not (tmp_path / "x.wav").exists()


def test_demo_voice_is_a_low_sung_phrase():
    from fastddsp.features import extract_features
    v = demo_voice()
    f = extract_features(v, 16000, pitch="fast", cache=False)
    voiced = f.confidence >= 0.8
    assert voiced.mean() > 0.6
    assert 130 < np.median(f.f0_hz[voiced]) < 230


def test_demo_page_has_every_model_and_clip(tmp_path, monkeypatch):
    model = pure_model()
    names = ["violin-tiny-q", "trumpet-full", "violin-cnn", "violin-tiny-48k", "violin-full",
             "violin-tiny", "violin-cnn-48k-q", "violin-cnn-q", "violin-cnn-48k"]
    monkeypatch.setattr("fastddsp.pages.demo.bundled_models", lambda: dict.fromkeys(names))
    monkeypatch.setattr("fastddsp.pages.demo.load", lambda name: model)
    r = run_demo(tmp_path / "d")
    page = (tmp_path / "d" / "index.html").read_text()
    # per instrument, in the thesis' order: full, cnn, tiny, cnn-q, tiny-q; 48 kHz after
    assert r.rows == ["trumpet-full", "violin-full", "violin-cnn", "violin-tiny", "violin-cnn-q",
                      "violin-tiny-q", "violin-cnn-48k", "violin-tiny-48k",
                      "violin-cnn-48k-q"] and r.trained
    for name in ("melody.violin-cnn.wav", "voice.trumpet-full.wav", "voice.input.wav",
                 "chords.violin-tiny.wav"):
        assert name in page and (tmp_path / "d" / name).is_file()
    # the chords column plays the notes at once: the first chord's three tones together
    chords, sr = sf.read(tmp_path / "d" / "chords.violin-tiny.wav")
    seg = chords[int(0.3 * sr): int(0.9 * sr)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / sr)
    for hz in (293.66, 369.99, 440.0):                  # D4, F#4, A4
        assert spec[np.abs(freqs - hz) < 5].max() > 30 * np.median(spec), hz
    # a spectrogram per cell, each a real PNG of the size the page shows
    pngs = re.findall(r"<img src='([^']+\.png)'", page)
    assert len(pngs) == 3 * len(names) + 1
    for name in pngs:
        data = (tmp_path / "d" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (320, 96)
    # each row: its decoder's size and measured speed; its own adjusted curves; the key
    assert page.count(f"{model.decoder_parameters:,} params") == len(names)
    assert len(re.findall(r"speed [\d,]+x real time", page)) == len(names)
    assert page.count("<title>adjusted f0</title>") == len(names)
    assert "tiny: causal 8-channel CNN" in page and "untrained" not in page


def test_scores_play_at_the_models_training_loudness():
    from fastddsp.pipelines.render import render_notes
    from fastddsp.pipelines.score import Note, notes_to_features, score_loudness

    model = fastddsp.load("violin-tiny")
    q = model.stats["loudness_db"]["quantiles"]
    notes = [Note(76, 0.5, 1.0, velocity=1.0), Note(74, 1.5, 1.0, velocity=0.5)]
    feats = notes_to_features(notes, model.frame_rate)
    placed = score_loudness(feats.loudness_db, model)
    full, half = placed[225], placed[475]  # inside each note, after its attack
    assert full == pytest.approx(np.interp(0.9, np.linspace(0, 1, len(q)), q), abs=0.01)
    assert full - half == pytest.approx(20 * np.log10(2), abs=0.01)  # velocity ratio kept
    assert placed[0] == -80.0 and placed[-1] == -80.0  # rests stay silence
    untrained = fastddsp.Model.from_preset("tiny")
    assert np.array_equal(score_loudness(feats.loudness_db, untrained), feats.loudness_db)
    audio = render_notes(notes, model)
    sr = model.sample_rate
    sustain = audio[int(0.6 * sr): int(1.4 * sr)]
    assert 20 * np.log10(np.sqrt(np.mean(sustain ** 2))) > -30  # playing level, not a whisper
    assert np.abs(audio[: int(0.5 * sr)]).max() < 1e-6  # the rest before the first note
    onset = audio[int(0.5 * sr): int(0.53 * sr)]
    assert np.abs(onset).max() < np.abs(sustain).max()  # no burst at the onset (was 2.2x)
