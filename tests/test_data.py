import json

import numpy as np
import pytest

from fastddsp.data import (
    Clip,
    ExampleDataset,
    choose_split,
    load_clips,
    pitch_shifted,
    prepare_dataset,
)
from fastddsp.errors import UserError
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
