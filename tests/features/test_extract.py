import csv

import numpy as np
import pytest
import soundfile as sf

import fastddsp
from fastddsp.cli.main import run
from fastddsp.features import pitch as pitch_mod
from tests.conftest import tone


def test_extract_features_rates_and_cache(tmp_path, monkeypatch):
    x = np.concatenate([tone(440.0, 1.0, sr=22050), np.zeros(11025, np.float32)])
    calls = []
    real = pitch_mod.TRACKERS["fast"]
    monkeypatch.setitem(pitch_mod.TRACKERS, "fast", pitch_mod.Tracker(
        real.name, real.description, real.voicing_threshold,
        lambda a, c: calls.append(1) or real.run(a, c)))
    f = fastddsp.extract_features(x, 22050, pitch="fast", frame_rate=250, cache=tmp_path)
    assert f.frame_rate == 250 and f.n_frames == 375
    assert abs(np.median(f.f0_hz[50:200]) - 440) < 1
    assert f.loudness_db[-10:].max() == -80.0
    assert np.all(np.abs(f.f0_hz[300:] - 440) < 2)  # held through the silence
    again = fastddsp.extract_features(x, 22050, pitch="fast", frame_rate=250, cache=tmp_path)
    assert len(calls) == 1  # second call came from the cache
    assert np.array_equal(again.f0_hz, f.f0_hz) and np.array_equal(again.loudness_db,
                                                                   f.loudness_db)
    fastddsp.extract_features(x, 22050, pitch="fast", frame_rate=100, cache=tmp_path)
    assert len(calls) == 2  # other settings, other entry


def test_interpolate_pitch_is_linear_in_cents():
    from fastddsp.features.extract import interpolate_pitch

    f0 = 220.0 * 2 ** (np.arange(11) / 10)  # an octave glide at 100 frames/s, 0.1 s
    conf = np.linspace(0.0, 1.0, 11)
    f, c = interpolate_pitch(f0, conf, np.arange(11) / 100.0, 30, 250.0)
    t = np.arange(30) / 250.0
    inside = t <= 0.1
    assert np.allclose(f[inside], 220.0 * 2 ** (t[inside] / 0.1), rtol=1e-6)
    assert np.allclose(c[inside], t[inside] / 0.1, atol=1e-6)
    assert np.all(f[~inside] == np.float32(440.0)) and np.all(c[~inside] == 1.0)  # held


def test_pitch_at_a_lower_rate_follows_vibrato_and_costs_fewer_frames(monkeypatch):
    sr = 16000
    t = np.arange(2 * sr) / sr
    f_true = 440.0 * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5.0 * t))  # ±50 cents at 5 Hz
    x = (0.3 * np.sin(2 * np.pi * np.cumsum(f_true) / sr)).astype(np.float32)
    frames, last_centre = [], []
    real = pitch_mod.TRACKERS["fast"]
    monkeypatch.setitem(pitch_mod.TRACKERS, "fast", pitch_mod.Tracker(
        real.name, real.description, real.voicing_threshold,
        lambda a, c: frames.append(c.size) or last_centre.append(c.max()) or real.run(a, c)))
    full = fastddsp.extract_features(x, sr, pitch="fast", frame_rate=250, cache=False)
    low = fastddsp.extract_features(x, sr, pitch="fast", frame_rate=250, cache=False,
                                    pitch_rate=100)
    assert low.n_frames == full.n_frames == 500
    assert frames == [500, 201]  # 2.5x fewer pitch frames
    # 1 s: the pitch frame at the last control frame's time (0.996 s) lies at 1.0 s, past the
    # last sample: it is analysed at the last sample instead
    f = fastddsp.extract_features(x[:sr], sr, pitch="fast", cache=False, pitch_rate=100)
    assert frames[-1] == 101 and last_centre[-1] == sr - 1
    assert f.n_frames == 250 and np.all(np.isfinite(f.f0_hz))
    assert np.array_equal(low.loudness_db, full.loudness_db)
    cents = 1200 * np.abs(np.log2(low.f0_hz[25:-25] / full.f0_hz[25:-25]))
    assert np.median(cents) < 1.0 and cents.max() < 6.0  # 6 cents: the vibrato's curvature
    with pytest.raises(fastddsp.UserError, match="pitch rate"):
        fastddsp.extract_features(x, sr, pitch="fast", cache=False, pitch_rate=500)


def test_bad_arrays():
    with pytest.raises(fastddsp.UserError, match="empty"):
        fastddsp.extract_features(np.zeros(0), 16000, pitch="fast", cache=False)
    with pytest.raises(fastddsp.UserError, match="NaN"):
        fastddsp.extract_features(np.array([0.0, np.nan]), 16000, pitch="fast", cache=False)
    with pytest.raises(fastddsp.UserError, match="unknown pitch tracker"):
        fastddsp.extract_features(np.zeros(100), 16000, pitch="swipe", cache=False)


@pytest.mark.parametrize("tracker", ["fast", "crepe-tiny"])
def test_cli_on_stereo_44k_file(tmp_path, tracker):
    sr = 44100
    mono = np.concatenate([tone(330.0, 1.0, sr=sr), np.zeros(sr // 2, np.float32)])
    wav = tmp_path / "in.wav"
    sf.write(wav, np.stack([mono, 0.5 * mono], 1), sr)
    out = tmp_path / "f.csv"
    assert run(["features", str(wav), "--pitch", tracker, "--frame-rate", "100", "-o",
                str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["time_s", "f0_hz", "confidence", "loudness_db"]
    assert len(rows) == 150
    assert float(rows[1]["time_s"]) == pytest.approx(0.01)
    f0 = np.array([float(r["f0_hz"]) for r in rows])
    ld = np.array([float(r["loudness_db"]) for r in rows])
    assert np.all(np.abs(1200 * np.log2(f0[10:90] / 330.0)) < 10)
    assert ld[130:].max() == -80.0 and ld[20:80].min() > -20


def test_cli_features_feed_synth(tmp_path):
    wav = tmp_path / "in.flac"
    sf.write(wav, tone(262.0, 1.0), 16000)
    csv_path = tmp_path / "f.csv"
    assert run(["features", str(wav), "--pitch", "fast", "-o", str(csv_path)]) == 0
    model = fastddsp.Model.from_preset("tiny").save(tmp_path / "m.fddsp")
    out = tmp_path / "o.wav"
    assert run(["synth", str(csv_path), "--model", str(model), "-o", str(out)]) == 0
    assert sf.info(out).frames == 250 * 64


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "directory", "nan", "nosamples"])
def test_cli_bad_audio_exits_2_without_output(tmp_path, capsys, kind):
    src = tmp_path / "in.wav"
    if kind == "empty":
        src.write_bytes(b"")
    elif kind == "garbage":
        src.write_bytes(b"this is not audio" * 100)
    elif kind == "directory":
        src.mkdir()
    elif kind == "nan":
        sf.write(src, np.array([0.0, np.nan, 0.1] * 1000, np.float32), 16000, subtype="FLOAT")
    elif kind == "nosamples":
        sf.write(src, np.zeros(0, np.float32), 16000)
    out = tmp_path / "f.csv"
    assert run(["features", str(src), "--pitch", "fast", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastddsp: error:") and err.count("\n") == 1
    assert not out.exists()


def test_cli_refuses_to_overwrite_input(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(262.0, 0.5), 16000)
    before = wav.read_bytes()
    assert run(["features", str(wav), "--pitch", "fast", "-o", str(wav)]) == 2
    assert wav.read_bytes() == before


@pytest.mark.parametrize("block_seconds", [0.37, 2.0, 100.0])
def test_blockwise_file_features_equal_one_pass(tmp_path, block_seconds):
    from fastddsp.features.extract import extract_features_file
    from fastddsp.io import read_audio
    sr = 44100
    t = np.arange(int(sr * 5.3)) / sr
    x = (0.3 * np.sin(2 * np.pi * (220 + 50 * np.sin(t)) * t)).astype(np.float32)
    sf.write(tmp_path / "in.wav", np.stack([x, 0.5 * x], 1), sr)
    audio, rate = read_audio(tmp_path / "in.wav")
    ref = fastddsp.extract_features(audio, rate, pitch="fast", cache=False)
    got = extract_features_file(tmp_path / "in.wav", pitch="fast", block_seconds=block_seconds,
                                cache=False)
    assert got.n_frames == ref.n_frames
    for a, b in ((got.f0_hz, ref.f0_hz), (got.loudness_db, ref.loudness_db),
                 (got.confidence, ref.confidence)):
        assert np.array_equal(a, b)


def test_file_features_are_cached(tmp_path, monkeypatch):
    from fastddsp.features.extract import extract_features_file
    sf.write(tmp_path / "in.wav", tone(330.0, 1.0), 16000)
    first = extract_features_file(tmp_path / "in.wav", pitch="fast")
    monkeypatch.setattr("fastddsp.features.extract.loudness_at",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = extract_features_file(tmp_path / "in.wav", pitch="fast")
    assert np.array_equal(first.f0_hz, again.f0_hz)


def test_cli_voiced_share_uses_the_trackers_threshold(tmp_path, capsys, monkeypatch):
    sf.write(tmp_path / "in.wav", tone(330.0, 1.0), 16000)
    real = pitch_mod.TRACKERS["fast"]  # confidence 0.6 everywhere: voiced for 0.5, not 0.8
    monkeypatch.setitem(pitch_mod.TRACKERS, "fast", pitch_mod.Tracker(
        real.name, real.description, real.voicing_threshold,
        lambda a, c: (real.run(a, c)[0], np.full(c.size, 0.6, np.float32))))
    assert run(["features", str(tmp_path / "in.wav"), "--pitch", "fast", "--no-cache", "-o",
                str(tmp_path / "f.csv")]) == 0
    assert "/s, 0% confidently voiced" in capsys.readouterr().out


def test_the_cache_is_bounded_and_drops_the_least_recently_used(tmp_path, monkeypatch):
    import os

    from fastddsp.cache import cache_entries, clear_cache
    from fastddsp.features import extract_features

    monkeypatch.setenv("FASTDDSP_CACHE", str(tmp_path / "c"))
    clips = [tone(220.0 * (1 + k / 8), 1.0) for k in range(4)]
    names = []
    for k, clip in enumerate(clips[:3]):
        before = {e.name for e in cache_entries()}
        extract_features(clip, 16000, pitch="fast")
        (new,) = {e.name for e in cache_entries()} - before
        os.utime(tmp_path / "c" / new, (1000 + k, 1000 + k))  # written in this order
        names.append(new)
    size = max(e.stat().st_size for e in cache_entries())
    monkeypatch.setenv("FASTDDSP_CACHE_MAX_MB", str(3.5 * size / 1e6))  # room for three
    extract_features(clips[0], 16000, pitch="fast")  # a hit: clip 0 is the most recent now
    extract_features(clips[3], 16000, pitch="fast")  # a fourth: the least recent one goes
    kept = {e.name for e in cache_entries()}
    assert len(kept) == 3 and names[1] not in kept and {names[0], names[2]} <= kept
    assert sum(e.stat().st_size for e in cache_entries()) <= 3.5 * size
    assert clear_cache()[0] == 3 and cache_entries() == []


def test_cache_command_and_no_cache(tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from fastddsp.cache import cache_entries
    from fastddsp.cli.main import run

    monkeypatch.setenv("FASTDDSP_CACHE", str(tmp_path / "c"))
    sf.write(tmp_path / "in.wav", tone(330.0, 1.0), 16000)
    feats = ["features", str(tmp_path / "in.wav"), "--pitch", "fast", "-o"]
    assert run(["transfer", str(tmp_path / "in.wav"), "-o", str(tmp_path / "t.wav"),
                "--pitch", "fast", "--no-cache"]) == 0
    assert cache_entries() == []                  # bypassed, for that command only
    assert run([*feats, str(tmp_path / "b.csv")]) == 0
    assert len(cache_entries()) == 1
    capsys.readouterr()
    assert run(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "c") in out and "1 entries" in out and "at most 1024 MB" in out
    assert run(["cache", "--clear"]) == 0
    assert "cleared" in capsys.readouterr().out and cache_entries() == []
