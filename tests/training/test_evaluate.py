import json

import numpy as np
import pytest
import soundfile as sf

import fastddsp
from fastddsp import Model
from fastddsp.cli.main import run
from fastddsp.training.evaluate import evaluate_model, evaluate_outputs, score_pair
from tests.conftest import tone


def test_clip_against_itself_scores_zero():
    x = np.concatenate([tone(294.0, 1.5), tone(392.0, 1.5)])
    s = score_pair(x, x, 16000, "self", pitch="fast")
    assert s.spectral_distance == 0.0
    assert s.loudness_l1_db == 0.0
    assert s.f0_l1_semitones == 0.0 and s.outlier_ratio == 0.0
    assert s.voiced_frames > 250


def test_scores_grow_with_degradation():
    x = tone(294.0, 2.0)
    noisy = x + 0.05 * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
    shifted = tone(294.0 * 2 ** (2 / 12), 2.0)
    a = score_pair(noisy, x, 16000, pitch="fast")
    b = score_pair(shifted, x, 16000, pitch="fast")
    assert a.spectral_distance > 0.5
    assert b.f0_l1_semitones == pytest.approx(2.0, abs=0.05) and b.outlier_ratio > 0.95


def test_outputs_mode_and_model_mode(tmp_path):
    refs, outs = tmp_path / "refs", tmp_path / "outs"
    refs.mkdir()
    outs.mkdir()
    for i, f in enumerate((220.0, 330.0)):
        sf.write(refs / f"clip{i}.wav", tone(f, 1.0), 16000)
        sf.write(outs / f"clip{i}.mine.wav", tone(f, 1.0), 16000)
    rep = evaluate_outputs(outs, refs, tag="mine", score_pitch="fast")
    assert [c.name for c in rep.clips] == ["clip0", "clip1"]
    assert rep.mean()["spectral_distance"] < 1e-6
    model = Model.from_preset("tiny")
    rep = evaluate_model(model, refs, out_dir=tmp_path / "ev", features_pitch="fast",
                         score_pitch="fast")
    assert len(rep.clips) == 2 and (tmp_path / "ev" / "clip0.wav").is_file()
    assert (tmp_path / "ev" / "scores.json").is_file()
    assert rep.mean()["spectral_distance"] > 3  # an untrained model is far off
    assert run(["eval", str(outs), str(refs), "--tag", "missing", "--pitch", "fast"]) == 2


def test_thesis_outputs_score_like_the_readme(shared_data):
    rep = evaluate_outputs(shared_data / "thesis_outputs" / "violin", shared_data / "violin",
                           tag="cnn_tiny", score_pitch="fast")
    assert rep.mean()["spectral_distance"] == pytest.approx(6.48, abs=0.05)


def test_eval_says_which_split_it_scored(tmp_path, capsys):
    from fastddsp.training.data import prepare_dataset
    from tests.synthetic import write_instrument

    write_instrument(tmp_path / "audio", n_files=3, seconds=4.0)
    prepare_dataset(tmp_path / "audio", tmp_path / "data", pitch="fast", val_names=["take2.wav"])
    model = Model.from_preset("tiny").save(tmp_path / "m.fddsp")
    assert run(["eval", str(model), str(tmp_path / "data"), "--pitch", "fast"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f"scored: the validation split of the data folder "
                                   f"{tmp_path / 'data'} (1 file)")
    assert run(["eval", str(model), str(tmp_path / "audio"), "--pitch", "fast",
                "--features-pitch", "fast"]) == 0
    assert capsys.readouterr().out.startswith(f"scored: all 3 audio files of {tmp_path / 'audio'}")


def test_eval_scores_once_per_tracker(tmp_path, capsys):
    """Users' features come from different trackers: eval scores the model with each."""
    from tests.synthetic import write_instrument

    write_instrument(tmp_path / "audio", n_files=2, seconds=3.0)
    model = fastddsp.load("violin-tiny")
    path = model.save(tmp_path / "m.fddsp")
    out = tmp_path / "ev"
    assert run(["eval", str(path), str(tmp_path / "audio"), "--pitch", "fast", "-o", str(out),
                "--features-pitch", "fast", "crepe-tiny"]) == 0
    text = capsys.readouterr().out
    for tracker in ("fast", "crepe-tiny"):
        scores = json.loads((out / tracker / "scores.json").read_text())
        assert scores["scored"].endswith(f"(features by {tracker})")
        want = evaluate_model(model, tmp_path / "audio", features_pitch=tracker,
                              score_pitch="fast").mean()
        assert scores["mean"]["spectral_distance"] == pytest.approx(want["spectral_distance"],
                                                                    abs=1e-4)
        assert f"{tracker} {want['spectral_distance']:.3f} spectral" in text.splitlines()[-1]
    assert text.splitlines()[-1].startswith("per tracker: fast ")
    from fastddsp.training.data import prepare_dataset

    prepared = tmp_path / "data"
    prepare_dataset(tmp_path / "audio", prepared, pitch="fast")
    assert run(["eval", str(path), str(prepared), "--features-pitch", "fast", "crepe-tiny"]) == 2
    assert "carries its own features" in capsys.readouterr().err
