import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

import fastddsp
from fastddsp.cli.main import run
from fastddsp.features.adjust import adjust_features
from fastddsp.features.loudness import frame_centres
from fastddsp.features.pitch import track
from fastddsp.pipelines.transfer import transfer
from tests.conftest import tone


def pure_model(mean_midi: float = 76.0) -> fastddsp.Model:
    """A model whose output is a clean harmonic tone (so its pitch is easy to measure), with
    violin-like training statistics."""
    m = fastddsp.Model.from_preset("tiny")
    with torch.no_grad():
        m.decoder.proj.weight.zero_()
        m.decoder.proj.bias.fill_(-20.0)
        m.decoder.proj.bias[0] = 2.0
        m.decoder.proj.bias[1] = 10.0
        m.decoder.proj.bias[2] = 9.0
        m.synth.reverb_ir.zero_()
    m.stats = {"pitch_midi": {"mean": mean_midi},
               "loudness_db": {"quantiles": np.linspace(-50, -10, 101).tolist()}}
    return m


def melody(sr: int, notes=(45, 48, 50, 52), seconds: float = 0.5) -> tuple[np.ndarray, list]:
    parts, truth = [], []
    for n in notes:
        f = 440 * 2 ** ((n - 69) / 12)
        parts.append(tone(f, seconds, sr=sr, amplitude=0.4))
        truth.append(f)
    return np.concatenate(parts), truth


def test_transfer_keeps_the_notes_and_lifts_a_bass_line(tmp_path):
    sr = 22050
    x, truth = melody(sr)  # A2..E3: bass range
    model = pure_model(76.0)  # violin-range training pitch (E5)
    y, rate = transfer(x, sr, model=model, pitch="fast")
    assert rate == sr and abs(y.size - x.size) <= sr // 100
    centres = frame_centres(y.size, sr, 100)
    y16 = fastddsp.io.resample(y, sr, 16000)
    f_out, _ = track(y16, (centres * 16000 / sr).astype(np.int64), "fast")
    per_note = len(centres) // len(truth)
    for i, f in enumerate(truth):
        seg = slice(i * per_note + 10, (i + 1) * per_note - 10)
        cents = 1200 * np.log2(np.median(f_out[seg]) / (f * 4))  # +2 octaves
        assert abs(cents) < 30, (i, cents)


def test_adjustment_octave_and_loudness_mapping():
    feats = fastddsp.Features(np.full(500, 110.0, np.float32),
                              np.linspace(-60, -20, 500).astype(np.float32),
                              np.ones(500, np.float32), 250.0)
    stats = {"pitch_midi": {"mean": 76.0},
             "loudness_db": {"quantiles": np.linspace(-40, -10, 101).tolist()}}
    out, adj = adjust_features(feats, stats)
    assert adj.octaves == 3  # 110 Hz (A2, midi 45): A5 (81) is the octave nearest E5 (76)
    assert np.allclose(out.f0_hz, 880.0)
    assert out.loudness_db.min() == pytest.approx(-40, abs=0.1)
    assert out.loudness_db.max() == pytest.approx(-10, abs=0.1)
    out, adj = adjust_features(feats, stats, octave=-1, pitch_shift=12, loudness=6.0)
    assert np.allclose(out.f0_hz, 110.0) and adj.octaves == -1
    assert np.allclose(out.loudness_db, feats.loudness_db + 6)
    # a steady tone stays steady, at the training median, however its loudness jitters
    jitter = np.random.default_rng(0).normal(0, 1e-3, 500).astype(np.float32)
    steady = fastddsp.Features(feats.f0_hz, -30 + jitter, feats.confidence, 250.0)
    out, _ = adjust_features(steady, stats)
    assert np.ptp(out.loudness_db) < 0.01 and np.median(out.loudness_db) == pytest.approx(-25)
    # a narrow input (10 dB) keeps its 10 dB, moved to the training median
    narrow = fastddsp.Features(feats.f0_hz, np.linspace(-35, -25, 500).astype(np.float32),
                               feats.confidence, 250.0)
    out, _ = adjust_features(narrow, stats)
    assert np.ptp(out.loudness_db) == pytest.approx(10, abs=0.1)
    assert np.median(out.loudness_db) == pytest.approx(-25, abs=0.1)
    quiet = fastddsp.Features(feats.f0_hz, feats.loudness_db, np.zeros(500, np.float32), 250)
    with pytest.raises(fastddsp.UserError, match="no confidently pitched"):
        adjust_features(quiet, stats)


def test_unvoiced_parts_stay_quiet():
    feats = fastddsp.Features(np.full(400, 220.0, np.float32), np.full(400, -30, np.float32),
                              np.r_[np.ones(200), np.zeros(200)].astype(np.float32), 250.0)
    out, _ = adjust_features(feats, {}, octave=0, loudness="none")
    assert np.all(out.loudness_db[200:] == -50.0) and np.all(out.loudness_db[:200] == -30)


@pytest.fixture
def model_file(tmp_path):
    return pure_model().save(tmp_path / "pure.fddsp")


def test_cli_transfer_several_inputs_and_rates(tmp_path, model_file):
    for name, sr in (("a.wav", 44100), ("b.flac", 16000)):
        x, _ = melody(sr, notes=(57, 60), seconds=0.6)
        sf.write(tmp_path / name, np.stack([x, x], 1), sr)
    out = tmp_path / "out"
    out.mkdir()
    assert run(["transfer", str(tmp_path / "a.wav"), str(tmp_path / "b.flac"), "--model",
                str(model_file), "--pitch", "fast", "-o", str(out)]) == 0
    a = sf.info(out / "a.pure.wav")
    b = sf.info(out / "b.pure.wav")
    assert (a.samplerate, b.samplerate) == (44100, 16000)
    assert a.duration == pytest.approx(1.2, abs=0.02)
    assert run(["transfer", str(tmp_path / "a.wav"), "--model", str(model_file), "--pitch",
                "fast", "--sr", "22050", "-o", str(tmp_path / "c.wav")]) == 0
    assert sf.info(tmp_path / "c.wav").samplerate == 22050


def _bad_input(tmp_path, kind):
    p = tmp_path / "in.wav"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "zero-length":
        sf.write(p, np.zeros(0, np.float32), 16000)
    elif kind == "silence":
        sf.write(p, np.zeros(32000, np.float32), 16000)
    elif kind == "not-audio":
        p.write_bytes(bytes(range(256)) * 40)
    elif kind == "unsupported":
        p = tmp_path / "in.xyz"
        p.write_text("hello")
    elif kind == "directory":
        p = tmp_path / "dir"
        p.mkdir()
    elif kind == "nan":
        sf.write(p, np.r_[tone(440.0, 1.0), [np.nan]].astype(np.float32), 16000,
                 subtype="FLOAT")
    return p


@pytest.mark.parametrize("kind", ["empty", "zero-length", "silence", "not-audio", "unsupported",
                                  "directory", "nan", "unknown-model"])
def test_cli_transfer_bad_input_exits_2_without_output(tmp_path, capsys, kind, model_file):
    if kind == "unknown-model":
        src, model = tmp_path / "in.wav", "violin-huge"
        sf.write(src, tone(440.0, 1.0), 16000)
    else:
        src, model = _bad_input(tmp_path, kind), str(model_file)
    out = tmp_path / "out.wav"
    assert run(["transfer", str(src), "--model", model, "--pitch", "fast", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastddsp: error:") and err.count("\n") == 1, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_internal_failure_exits_1_and_leaves_nothing(tmp_path, capsys, model_file, monkeypatch):
    src = tmp_path / "in.wav"
    sf.write(src, tone(440.0, 2.0), 16000)

    def broken(*a, **k):
        yield np.zeros(64, np.float32)
        raise RuntimeError("synthesis exploded")

    monkeypatch.setattr("fastddsp.pipelines.transfer.render_chunks", broken)
    out = tmp_path / "out.wav"
    assert run(["transfer", str(src), "--model", str(model_file), "--pitch", "fast", "-o",
                str(out)]) == 1
    assert "internal error" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "pure.fddsp"]


def test_input_is_never_overwritten(tmp_path, model_file):
    src = tmp_path / "in.wav"
    sf.write(src, tone(440.0, 1.0), 16000)
    before = src.read_bytes()
    assert run(["transfer", str(src), "--model", str(model_file), "--pitch", "fast", "-o",
                str(src)]) == 2
    assert src.read_bytes() == before


PEAK_SCRIPT = textwrap.dedent("""
    import resource, sys
    from fastddsp.pipelines.transfer import transfer_file
    transfer_file(sys.argv[1], sys.argv[2], sys.argv[3], pitch="fast", block_seconds=30)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.mark.slow
def test_ten_minute_input_runs_in_bounded_memory(tmp_path, model_file):
    sr = 48000
    seconds_long, seconds_short = 600, 60
    rng = np.random.default_rng(0)
    for name, seconds in (("long.wav", seconds_long), ("short.wav", seconds_short)):
        with sf.SoundFile(tmp_path / name, "w", sr, 2, "PCM_16") as f:
            for _ in range(seconds // 10):
                x = tone(196.0 * 2 ** (int(rng.integers(0, 12)) / 12), 10.0, sr=sr)
                f.write(np.stack([x, x], 1))
    peaks = {}
    for name in ("short.wav", "long.wav"):
        r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / name),
                            str(tmp_path / f"out-{name}"), str(model_file)],
                           capture_output=True, text=True, timeout=400, check=True)
        peaks[name] = int(r.stdout.strip().splitlines()[-1]) / 1024  # MiB
    info = sf.info(tmp_path / "out-long.wav")
    assert info.duration == pytest.approx(seconds_long, abs=0.05)
    # the 10 min input as float32 would alone be 220 MiB more than the 1 min one; the
    # pipeline holds 30 s blocks, so its peak must not grow with the length
    growth = peaks["long.wav"] - peaks["short.wav"]
    print(f"peak RSS: 1 min input {peaks['short.wav']:.0f} MiB, 10 min input "
          f"{peaks['long.wav']:.0f} MiB")
    assert growth < 100, peaks


@pytest.mark.parametrize(("amplitude", "channels"), [(0.05, 1), (0.6, 2)])
def test_transfer_comes_out_at_the_inputs_loudness(tmp_path, amplitude, channels):
    import pyloudnorm

    from fastddsp.pipelines.transfer import transfer_file
    from tests.conftest import tone

    x = tone(330.0, 3.0, 44100, amplitude=amplitude)
    x = np.stack([x] * channels, 1) if channels > 1 else x
    src = tmp_path / "in.wav"
    sf.write(src, x, 44100, subtype="FLOAT")
    r = transfer_file(str(src), str(tmp_path / "out.wav"), "violin-tiny", pitch="fast")
    y, sr = sf.read(tmp_path / "out.wav")
    want = pyloudnorm.Meter(44100).integrated_loudness(x)
    got = pyloudnorm.Meter(sr).integrated_loudness(y)
    assert abs(got - want) < 1.0, (want, got, r.matched_db)
    assert r.matched_db is not None
    # asked for a fixed loudness, the user gets it, not a match
    r = transfer_file(str(src), str(tmp_path / "fixed.wav"), "violin-tiny", pitch="fast",
                      loudness=0.0)
    assert r.matched_db is None


def test_the_api_and_the_app_transfer_at_the_inputs_loudness_too():
    import pyloudnorm

    from tests.conftest import tone

    for amplitude in (0.03, 0.8):
        x = tone(330.0, 3.0, 44100, amplitude=amplitude)
        y, sr = fastddsp.transfer(x, 44100, model="violin-tiny", pitch="fast")
        want = pyloudnorm.Meter(44100).integrated_loudness(x)
        assert abs(pyloudnorm.Meter(sr).integrated_loudness(y) - want) < 1.0
        assert np.abs(y).max() < 1.0  # never clips (limited at -1 dBFS, then resampled)
