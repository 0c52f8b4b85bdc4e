import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastddsp.errors import UserError
from fastddsp.features import extract_features
from fastddsp.features.loudness import loudness_db
from fastddsp.io import read_audio
from fastddsp.training import data
from fastddsp.training.data import (
    Clip,
    ExampleDataset,
    choose_split,
    load_clips,
    pitch_shifted,
    prepare_dataset,
    teacher_clips,
    varied_controls,
)
from tests.synthetic import write_instrument


@pytest.fixture
def audio_dir(tmp_path):
    write_instrument(tmp_path / "audio", n_files=4, seconds=7.5)
    (tmp_path / "audio" / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    return tmp_path / "audio"


def test_prepare_counts_skips_and_reuses(tmp_path, audio_dir):
    with pytest.warns(UserWarning, match="corrupt.wav"):
        s = prepare_dataset(audio_dir, tmp_path / "data", pitch="fast")
    assert (s.processed, s.reused, len(s.skipped)) == (4, 0, 1)
    assert s.skipped[0][0] == "corrupt.wav"
    # 7.5 s files -> 4 s examples every 1 s: 4 per file
    assert s.train_examples + s.val_examples == 16
    assert s.val_examples >= 4 and s.train_examples >= 4
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["stats"]["pitch_midi"]["mean"] > 50
    assert len(manifest["stats"]["loudness_db"]["quantiles"]) == 101
    assert manifest["skipped"][0]["path"] == "corrupt.wav"

    with pytest.warns(UserWarning):
        again = prepare_dataset(audio_dir, tmp_path / "data", pitch="fast")
    assert (again.processed, again.reused) == (0, 4)
    write_instrument(audio_dir, n_files=1, seconds=5.0, seed=9)  # take0.wav changes
    with pytest.warns(UserWarning):
        third = prepare_dataset(audio_dir, tmp_path / "data", pitch="fast")
    assert (third.processed, third.reused) == (1, 3)
    assert len(list((tmp_path / "data" / "clips").glob("*.npz"))) == 4


def test_an_interrupted_prepare_resumes_where_it_stopped(tmp_path, audio_dir, monkeypatch):
    (audio_dir / "corrupt.wav").unlink()
    out = tmp_path / "data"
    real, calls = data.extract_features, []

    def stops_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "extract_features", stops_after_two)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(audio_dir, out, pitch="fast")
    assert not (out / "manifest.json").exists() and len(list((out / "clips").glob("*"))) == 2
    monkeypatch.setattr(data, "extract_features", real)
    resumed = prepare_dataset(audio_dir, out, pitch="fast")
    assert (resumed.processed, resumed.reused) == (2, 2)
    fresh = prepare_dataset(audio_dir, tmp_path / "fresh", pitch="fast")
    assert json.loads((out / "manifest.json").read_text())["stats"] == json.loads(
        (tmp_path / "fresh" / "manifest.json").read_text())["stats"]
    assert fresh.processed == 4
    # clips made with other settings are made again, not reused
    other = prepare_dataset(audio_dir, out, pitch="fast", example_seconds=2.0)
    assert (other.processed, other.reused) == (4, 0)


_HOLD_LOCK = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_a_prepare_into_a_folder_another_prepare_writes_is_refused(tmp_path, audio_dir):
    out = tmp_path / "data"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out / data.PREPARE_LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(UserError) as caught:
            prepare_dataset(audio_dir, out, pitch="fast")
        assert str(caught.value) == (f"{out} is being written by another prepare (pid "
                                     f"{holder.pid}); wait for it or choose another folder")
        assert [p.name for p in out.iterdir()] == [data.PREPARE_LOCK]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(UserWarning, match="corrupt.wav"):  # released with its process
        s = prepare_dataset(audio_dir, out, pitch="fast")
    assert s.processed == 4
    # the lock file stays, and reading the folder (or preparing it again) ignores it
    assert sorted(p.name for p in out.iterdir()) == [data.PREPARE_LOCK, "clips", "manifest.json"]
    clips, _ = load_clips(out, None)
    assert len(clips) == 4
    with pytest.warns(UserWarning):
        assert prepare_dataset(audio_dir, out, pitch="fast").reused == 4


def test_a_running_prepare_names_itself_in_the_lock(tmp_path, audio_dir):
    out = tmp_path / "data"
    with data._prepare_lock(out):
        assert (out / data.PREPARE_LOCK).read_text() == f"{os.getpid()}\n"
        with pytest.raises(UserError, match=rf"another prepare \(pid {os.getpid()}\)"):
            prepare_dataset(audio_dir, out, pitch="fast")
    assert not (out / "clips").exists() and not (out / "manifest.json").exists()
    with pytest.raises(UserError, match="is not a folder"):  # checked before any lock or folder
        prepare_dataset(tmp_path / "nothing", tmp_path / "other", pitch="fast")
    assert not (tmp_path / "other").exists()


def test_named_validation_files(tmp_path, audio_dir):
    with pytest.warns(UserWarning):
        prepare_dataset(audio_dir, tmp_path / "d", pitch="fast", val_names=["take2.wav"])
    val, _ = load_clips(tmp_path / "d", "val")
    assert [c.name for c in val] == ["take2.wav"]
    with pytest.raises(UserError, match="not found"):
        prepare_dataset(audio_dir, tmp_path / "d", pitch="fast", val_names=["nope.wav"])


def test_split_is_stable_and_keeps_one_of_each():
    names = [f"f{i}.wav" for i in range(10)]
    a = choose_split(names, 0.2)
    b = choose_split([*names, "new.wav"], 0.2)
    assert all(a[n] == b[n] for n in names)
    two = choose_split(["a.wav", "b.wav"], 0.1)
    assert sorted(two.values()) == ["train", "val"]


def test_prepare_with_a_pitch_rate_interpolates_and_redoes_the_clips(tmp_path, audio_dir):
    with pytest.warns(UserWarning):
        prepare_dataset(audio_dir, tmp_path / "data", pitch="fast")
    with pytest.warns(UserWarning):
        s = prepare_dataset(audio_dir, tmp_path / "data", pitch="fast", pitch_rate=100)
    assert (s.processed, s.reused) == (4, 0)  # other settings: the clips are redone
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["settings"]["pitch_rate"] == 100
    for e in manifest["files"]:
        with np.load(tmp_path / "data" / "clips" / e["clip"]) as z:
            f0 = z["f0_hz"]
        audio, _ = read_audio(audio_dir / e["path"], 16000)
        assert np.array_equal(f0, extract_features(audio, 16000, pitch="fast",
                                                   pitch_rate=100).f0_hz)
    with pytest.raises(UserError, match="pitch-rate"):
        prepare_dataset(audio_dir, tmp_path / "data", pitch="fast", pitch_rate=300)


def test_prepare_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio files"):
        prepare_dataset(tmp_path / "empty", tmp_path / "d")
    with pytest.raises(UserError, match="not a folder"):
        prepare_dataset(tmp_path / "missing", tmp_path / "d")


def test_examples_crops_gain_and_pitch_shift(tmp_path, audio_dir):
    with pytest.warns(UserWarning):
        prepare_dataset(audio_dir, tmp_path / "data", pitch="fast", val_names=["take3.wav"])
    clips, _ = load_clips(tmp_path / "data", "train")
    plain = ExampleDataset(clips, 16000, 250.0)
    ex = plain[0]
    assert ex["f0_hz"].shape == (1000,) and ex["audio"].shape == (64000,)
    aug = ExampleDataset(clips, 16000, 250.0, crop_frames=250, gain_db=6.0,
                         pitch_shifts=(-1.0, 0.0, 1.0))
    assert len(aug) > len(plain) * 2
    item = aug[0]
    assert item["f0_hz"].shape == (250,) and item["audio"].shape == (16000,)
    up = next(c for c in aug.clips if c.name.endswith("@+1"))
    base = next(c for c in aug.clips if c.name == up.name[:-3])
    ratio = np.median(up.f0_hz[50:300]) / np.median(base.f0_hz[50:300])
    assert ratio == pytest.approx(2 ** (1 / 12), rel=2e-3)
    assert up.audio.size == pytest.approx(base.audio.size / 2 ** (1 / 12), rel=0.01)


def _band_power_db(audio: np.ndarray, lo: float, hi: float, sr: int = 16000) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1024)[::256] * np.hanning(1024)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0)
    f = np.fft.rfftfreq(1024, 1 / sr)
    return float(10 * np.log10(power[(f >= lo) & (f <= hi)].mean()))


@pytest.mark.parametrize("semitones", [-1.0, 1.0, -2.0])
def test_pitch_shifted_clip_knows_the_band_it_still_has(semitones):
    rng = np.random.default_rng(0)
    n = 250 * 8
    noise = rng.uniform(-1, 1, n * 64).astype(np.float32)
    clip = Clip("noise", noise, np.full(n, 440.0, np.float32), np.ones(n, np.float32),
                np.full(n, -20.0, np.float32))
    assert clip.bandwidth_hz == np.inf
    shifted = pitch_shifted(clip, semitones, 16000, 250.0)
    bw = shifted.bandwidth_hz
    nyquist = 8000 * min(1.0, 2 ** (semitones / 12))
    assert bw == pytest.approx(0.94 * nyquist)
    level = _band_power_db(shifted.audio, 1000, 0.5 * bw)
    # full level up to bw, gone within a few per cent above it
    assert _band_power_db(shifted.audio, 0.97 * bw, bw) > level - 1.5
    assert _band_power_db(shifted.audio, 1.04 * bw, min(1.06 * bw, 8000)) < level - 15
    ds = ExampleDataset([clip], 16000, 250.0, example_seconds=4.0, pitch_shifts=(0.0, semitones))
    assert sorted(ds[i]["max_hz"].item() for i in range(len(ds)))[-1] == np.inf
    assert ds[len(ds) - 1]["max_hz"].item() == pytest.approx(bw)


def test_unvoiced_shift_moves_only_unvoiced_f0_by_one_draw_per_example():
    n = 1000
    conf = np.ones(n, np.float32)
    conf[400:700] = 0.1  # a rest: the features hold the last note's f0
    f0 = np.full(n, 440.0, np.float32)
    clip = Clip("rest", np.zeros(n * 64, np.float32), f0, conf, np.full(n, -30.0, np.float32))
    ds = ExampleDataset([clip], 16000, 250.0, unvoiced_shift=12.0, voicing_threshold=0.5)
    shifts = []
    for _ in range(40):
        got = ds[0]["f0_hz"].numpy()
        assert np.all(got[:400] == 440.0) and np.all(got[700:] == 440.0)
        rest = 12 * np.log2(got[400:700] / 440.0)
        assert np.ptp(rest) < 1e-4  # one shift for the whole example
        shifts.append(rest[0])
    assert max(np.abs(shifts)) <= 12.0
    assert min(shifts) < -6.0 and max(shifts) > 6.0  # spread over the range, both directions
    assert np.all(ExampleDataset([clip], 16000, 250.0)[0]["f0_hz"].numpy() == 440.0)


def _phrase() -> Clip:
    """4 s: a 440 Hz note at -20 dB, a 0.2 s rest at -50 dB, a 660 Hz note at -26 dB."""
    f0 = np.r_[np.full(400, 440.0), np.full(50, 440.0), np.full(550, 660.0)].astype(np.float32)
    ld = np.r_[np.full(400, -20.0), np.full(50, -50.0), np.full(550, -26.0)].astype(np.float32)
    conf = np.r_[np.ones(400), np.zeros(50), np.ones(550)].astype(np.float32)
    return Clip("phrase", np.zeros(1000 * 64, np.float32), f0, conf, ld)


def _longest_quiet(ld: np.ndarray) -> int:
    best = run = 0
    for quiet in ld < -35:
        run = run + 1 if quiet else 0
        best = max(best, run)
    return best


def test_varied_controls_move_pitch_tempo_gain_and_stretch_the_rest():
    clip = _phrase()
    rng = np.random.default_rng(0)
    shifts, gains, long_rests = [], [], 0
    for _ in range(200):
        f0, conf, ld = varied_controls(clip, 250.0, rng)
        assert f0.size == conf.size == ld.size
        # one pitch shift for the whole clip, the interval between the notes kept
        shift = 12 * np.log2(f0[0] / 440.0)
        assert 12 * np.log2(f0[-1] / f0[0]) == pytest.approx(12 * np.log2(1.5), abs=1e-3)
        assert -5.5 <= shift <= 2.5
        # one gain: both notes move by it
        gain = ld[0] + 20.0
        assert abs(gain) <= 6.0 + 1e-4
        assert ld[-1] == pytest.approx(-26.0 + gain, abs=1e-3)
        assert np.all(conf[ld < -45] < 0.5) and np.all(conf[ld > -30] > 0.5)
        rest = _longest_quiet(ld)
        # tempo x0.7-1.5: without a stretched rest the clip lasts 2.8-6 s and the rest 35-75
        # frames; a stretched one lasts 0.8-2 s times the tempo
        if rest > 80:
            long_rests += 1
            assert 0.8 * 0.7 * 250 - 2 <= rest <= 2.0 * 1.5 * 250 + 2
        else:
            assert 700 - 2 <= f0.size <= 1500 + 2
        shifts.append(shift)
        gains.append(gain)
    assert min(shifts) < -4.5 and max(shifts) > 1.5  # spread over the range
    assert min(gains) < -4.5 and max(gains) > 4.5
    assert 70 <= long_rests <= 130  # half of the draws


def test_teacher_clips_are_what_the_teacher_plays_from_the_varied_controls():
    def sine(f0, ld, seed):  # a teacher playing a sine at f0, its level following loudness
        f = np.repeat(f0, 64)
        amp = np.repeat(10 ** (ld / 20), 64)
        return (amp * np.sin(2 * np.pi * np.cumsum(f) / 16000)).astype(np.float32)

    clip = _phrase()
    clips = teacher_clips([clip, clip], sine, 3, 16000, 250.0, seed=5)
    assert len(clips) == 6 and clips[0].name == "phrase~teacher0"
    for c in clips:
        assert c.audio.size == c.f0_hz.size * 64
        # loudness measured on the teacher's audio, f0 as it played it
        assert np.array_equal(c.loudness_db, loudness_db(c.audio, 16000, 250.0))
        heard = extract_features(c.audio, 16000, pitch="fast", frame_rate=250.0)
        n = min(heard.n_frames, c.f0_hz.size)
        voiced = (heard.confidence[:n] > 0.9) & (c.loudness_db[:n] > -35)
        cents = 1200 * np.abs(np.log2(heard.f0_hz[:n][voiced] / c.f0_hz[:n][voiced]))
        assert voiced.sum() > 300 and np.median(cents) < 10
    # the same seed gives the same clips, another seed others
    again = teacher_clips([clip, clip], sine, 3, 16000, 250.0, seed=5)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(clips, again, strict=True))
    other = teacher_clips([clip], sine, 1, 16000, 250.0, seed=6)
    assert other[0].f0_hz.size != clips[0].f0_hz.size or \
        not np.allclose(other[0].f0_hz, clips[0].f0_hz)
