import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

import fastddsp
from fastddsp.training.data import prepare_dataset
from fastddsp.training.train import TrainConfig, read_checkpoint, read_losses, train
from tests.synthetic import write_instrument


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_instrument(root / "audio", n_files=4, seconds=7.5)  # 30 s of audio
    prepare_dataset(root / "audio", root / "data", pitch="fast", val_names=["take3.wav"])
    return root / "data"


def test_tiny_trains_and_the_loss_falls(data_dir, tmp_path):
    cfg = TrainConfig(preset="tiny", steps=60, batch_size=4, lr=3e-3, val_every=30,
                      checkpoint_every=30)
    r = train(data_dir, tmp_path / "m", cfg, progress=False)
    losses = [v for _, v in read_losses(r.run_dir)["train_loss"]]
    assert len(losses) >= 5
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) - 0.5
    assert r.final_val_loss is not None and np.isfinite(r.final_val_loss)
    model = fastddsp.load(r.model_path)
    assert model.stats["training"]["steps"] == 60
    assert model.stats["pitch_midi"]["mean"] > 50
    assert list((r.run_dir / "audio").glob("val_step*.wav"))
    assert not model.training


def test_resume_after_a_kill_continues_at_the_checkpointed_step(data_dir, tmp_path):
    out = tmp_path / "m.fddsp"
    run_dir = tmp_path / "m.run"
    cmd = [sys.executable, "-m", "fastddsp", "train", str(data_dir), "--preset", "tiny", "-o",
           str(out), "--steps", "100000", "--batch-size", "2", "--checkpoint-every", "5",
           "--val-every", "100000", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if ckpt.is_file():
                state = read_checkpoint(ckpt)
                if state["global_step"] >= 10:
                    break
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    saved = read_checkpoint(ckpt)["global_step"]
    assert saved >= 10 and not out.exists()
    r = train(data_dir, out, TrainConfig(preset="tiny", steps=saved + 5, batch_size=2,
                                         checkpoint_every=5, val_every=100000),
              resume=True, progress=False)
    assert (r.first_step, r.last_step) == (saved, saved + 5)
    assert out.is_file()


def test_refuses_to_clobber_a_run_without_resume(data_dir, tmp_path):
    cfg = TrainConfig(steps=2, batch_size=2, checkpoint_every=1, val_every=1000)
    train(data_dir, tmp_path / "m", cfg, progress=False)
    with pytest.raises(fastddsp.UserError, match="--resume"):
        train(data_dir, tmp_path / "m", cfg, progress=False)
    with pytest.raises(fastddsp.UserError, match="no checkpoint"):
        train(data_dir, tmp_path / "other", cfg, resume=True, progress=False)
    cfg.reverb = "free"  # another network than the checkpoint's: a clear error, not a crash
    with pytest.raises(fastddsp.UserError, match="--reverb decay"):
        train(data_dir, tmp_path / "m", cfg, resume=True, progress=False)


def test_logs_of_a_resumed_run_keep_their_history(data_dir, tmp_path):
    cfg = TrainConfig(steps=20, batch_size=2, checkpoint_every=10, val_every=1000)
    train(data_dir, tmp_path / "m", cfg, progress=False)
    cfg.steps = 40
    r = train(data_dir, tmp_path / "m", cfg, resume=True, progress=False)
    steps = [s for s, _ in read_losses(r.run_dir)["train_loss"]]
    assert min(steps) < 20 <= max(steps) and max(steps) >= 29


def test_a_longer_resume_continues_where_the_run_ended(data_dir, tmp_path):
    cfg = TrainConfig(steps=7, batch_size=2, checkpoint_every=5, val_every=1000)
    train(data_dir, tmp_path / "m", cfg, progress=False)  # ends between two checkpoints
    cfg.steps = 9
    r = train(data_dir, tmp_path / "m", cfg, resume=True, progress=False)
    assert (r.first_step, r.last_step) == (7, 9)


def test_a_moved_run_folder_resumes_with_its_best_weights(data_dir, tmp_path):
    cfg = TrainConfig(steps=20, batch_size=2, checkpoint_every=5, val_every=10, keep="best")
    train(data_dir, tmp_path / "a" / "m", cfg, progress=False)
    shutil.move(tmp_path / "a", tmp_path / "b")  # e.g. copied back from a GPU machine
    cfg.steps = 25  # no validation after the move: the best stays one from before it
    r = train(data_dir, tmp_path / "b" / "m", cfg, resume=True, progress=False)
    ckpts = r.run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert read_checkpoint(ckpts / "last.ckpt")["global_step"] == 25
    vals = read_losses(r.run_dir)["val_loss"]
    best_step, best_val = min(vals, key=lambda sv: sv[1])
    assert r.kept_step == best_step + 1 and r.final_val_loss == pytest.approx(best_val)


def test_the_room_trains_and_is_baked_into_the_model_file(data_dir, tmp_path):
    from fastddsp.dsp.reverb import initial_impulse_response
    start = initial_impulse_response(16000, 16000)
    cfg = TrainConfig(preset="tiny", steps=30, batch_size=4, lr=3e-3, val_every=1000)
    model = fastddsp.load(train(data_dir, tmp_path / "decay", cfg, progress=False).model_path)
    ir = model.synth.reverb_ir.detach()
    assert not hasattr(model.synth, "room")
    # a decaying room, not the free IR's start: the baked IR is noise of other values, and
    # its last 0.1 s is much quieter than its first
    assert not torch.allclose(ir, start, atol=1e-3)
    assert ir[-1600:].pow(2).mean() < 0.1 * ir[1:1601].pow(2).mean()
    ckpt = read_checkpoint(tmp_path / "decay.run" / "checkpoints" / "last.ckpt")
    rt60 = ckpt["state_dict"]["room.log_rt60"].exp()
    assert not torch.allclose(rt60, torch.full_like(rt60, 0.25))  # it learned
    cfg.reverb = "free"
    free = fastddsp.load(train(data_dir, tmp_path / "free", cfg, progress=False).model_path)
    free_ir = free.synth.reverb_ir.detach()
    assert not torch.allclose(free_ir, start, atol=1e-3)  # every sample learned directly
    assert (free_ir[8000:] - start[8000:]).abs().max() > 1e-2


def test_the_noise_floor_learns_and_the_bandwidth_holds(data_dir, tmp_path):
    from fastddsp.dsp.synth import NOISE_FLOOR_START
    cfg = TrainConfig(preset="tiny", steps=30, batch_size=4, lr=3e-3, val_every=1000,
                      noise_floor=True, max_harmonic_hz=3000.0)
    r = train(data_dir, tmp_path / "m", cfg, progress=False)
    model = fastddsp.load(r.model_path)
    assert model.config.noise_floor is True and model.config.max_harmonic_hz == 3000.0
    moved = (model.synth.log_noise_floor - np.log(NOISE_FLOOR_START)).abs()
    assert moved.max() > 0.1      # it learned (at the room's 10x rate)
    with torch.no_grad():
        c = model.controls(torch.full((1, 50), 700.0), torch.full((1, 50), -20.0))
    assert torch.count_nonzero(c.harmonics[0, 25]).item() == 4  # 700 .. 2800 Hz
    # a resumed run keeps its synth; an --init run may switch the floor on (decoder kept)
    more = TrainConfig(preset="tiny", steps=32, batch_size=4, lr=3e-3, val_every=1000,
                       max_harmonic_hz=3000.0)
    with pytest.raises(fastddsp.UserError, match="started with --noise-floor;"):
        train(data_dir, tmp_path / "m", more, run_dir=r.run_dir, resume=True, progress=False)
    more.noise_floor, more.max_harmonic_hz = True, None
    with pytest.raises(fastddsp.UserError, match=r"started with --max-harmonic-hz 3000\.0;"):
        train(data_dir, tmp_path / "m", more, run_dir=r.run_dir, resume=True, progress=False)
    # --init keeps the floor, or drops it, or starts a new one; the decoder is kept throughout
    vec = torch.nn.utils.parameters_to_vector
    models = {}
    for tag, init, floor in (("kept", r.model_path, None), ("off", r.model_path, False),
                             ("new", tmp_path / "off.fddsp", True)):
        cfg = TrainConfig(preset=None, init=str(init), reverb="free", steps=2, batch_size=2,
                          lr=1e-12, val_every=1000, noise_floor=floor)
        models[tag] = fastddsp.load(train(data_dir, tmp_path / tag, cfg,
                                          progress=False).model_path)
        assert torch.allclose(vec(models[tag].decoder.parameters()),
                              vec(model.decoder.parameters()), atol=1e-6)
    torch.testing.assert_close(models["kept"].synth.noise_floor, model.synth.noise_floor)
    assert models["off"].config.noise_floor is False and models["off"].synth.noise_floor is None
    torch.testing.assert_close(models["new"].synth.noise_floor,
                               torch.full((65,), NOISE_FLOOR_START))
    assert all(m.config.max_harmonic_hz == 3000.0 for m in models.values())


def test_max_minutes_stops_training_and_writes_the_model(data_dir, tmp_path):
    cfg = TrainConfig(preset="tiny", steps=1_000_000, batch_size=2, val_every=1_000_000,
                      max_minutes=0.05)
    t0 = time.perf_counter()
    r = train(data_dir, tmp_path / "m", cfg, progress=False)
    assert time.perf_counter() - t0 < 60
    assert 0 < r.last_step < 1_000_000
    assert fastddsp.load(r.model_path).stats["training"]["steps"] == r.last_step


@pytest.mark.parametrize("bad", [{"steps": 0}, {"batch_size": 0}, {"lr": 0.0},
                                 {"crop_seconds": -1.0}, {"val_every": 0},
                                 {"reverb": "plate"}, {"max_minutes": 0.0}, {"ema": 1.0},
                                 {"ema": -0.1}, {"unvoiced_shift": -1.0}, {"gain_db": -1.0},
                                 {"max_harmonic_hz": -1.0}, {"weight_decay": -0.1},
                                 {"lr": 0.1, "weight_decay": 10.0},
                                 {"teacher": "violin-cnn", "teacher_variants": 0}])
def test_bad_training_options_are_user_errors(bad):
    with pytest.raises(fastddsp.UserError):
        TrainConfig(**bad)


def test_init_fine_tunes_a_trained_model(data_dir, tmp_path):
    base = fastddsp.load("violin-tiny")
    # a learning rate of ~0: after two steps the weights and IR are still the bundled model's
    # (BatchNorm's running statistics do move: they follow the new data)
    cfg = TrainConfig(preset=None, init="violin-tiny", reverb="free", steps=2, batch_size=2,
                      lr=1e-12, val_every=1000)
    r = train(data_dir, tmp_path / "ft", cfg, progress=False)
    tuned = fastddsp.load(r.model_path)
    assert tuned.config == base.config
    pairs = zip(base.named_parameters(), tuned.parameters(), strict=True)
    for (name, a), b in pairs:
        assert torch.allclose(a, b, atol=1e-6), name
    # the dataset's statistics (for timbre transfer) are the new data's, not the violin's
    assert tuned.stats["pitch_midi"] != base.stats["pitch_midi"]
    assert tuned.stats["training"]["init"] == "violin-tiny"
    assert json.loads((r.run_dir / "train_config.json").read_text())["preset"] == "tiny"
    # and with a real learning rate the weights move
    cfg = TrainConfig(preset="tiny", init="violin-tiny", reverb="free", steps=5, batch_size=2,
                      lr=1e-3, val_every=1000)
    moved = fastddsp.load(train(data_dir, tmp_path / "ft2", cfg, progress=False).model_path)
    vec = torch.nn.utils.parameters_to_vector
    assert not torch.allclose(vec(moved.decoder.parameters()), vec(base.decoder.parameters()))


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "cnn", "init": "violin-tiny", "reverb": "free"}, "is a tiny model"),
    ({"preset": None, "init": "violin-tiny-q", "reverb": "free"}, "int8"),
    ({"preset": None, "init": "no-such-model", "reverb": "free"}, "unknown model"),
])
def test_init_refuses_what_it_cannot_continue(data_dir, tmp_path, kwargs, message):
    with pytest.raises(fastddsp.UserError, match=message):
        train(data_dir, tmp_path / "ft", TrainConfig(steps=1, **kwargs), progress=False)
    assert not (tmp_path / "ft.fddsp").exists()


def test_init_with_a_new_room_keeps_only_the_decoder(data_dir, tmp_path):
    base = fastddsp.load("violin-tiny")
    cfg = TrainConfig(preset=None, init="violin-tiny", reverb="decay", steps=2, batch_size=2,
                      lr=1e-12, val_every=1000)
    tuned = fastddsp.load(train(data_dir, tmp_path / "ft", cfg, progress=False).model_path)
    vec = torch.nn.utils.parameters_to_vector
    assert torch.allclose(vec(tuned.decoder.parameters()), vec(base.decoder.parameters()),
                          atol=1e-6)
    # the impulse response is the new room's (baked), not the violin's
    assert (tuned.synth.reverb_ir - base.synth.reverb_ir).abs().max() > 1e-3


def test_init_continues_the_models_room(data_dir, tmp_path):
    # the tiny trumpet's impulse response was baked from a decaying room: refitted, that room
    # trains on, and after two steps at a learning rate of ~0 it is the model's impulse response
    base = fastddsp.load("trumpet-tiny")
    cfg = TrainConfig(preset=None, init="trumpet-tiny", reverb="init", steps=2, batch_size=2,
                      lr=1e-12, val_every=1000)
    tuned = fastddsp.load(train(data_dir, tmp_path / "ft", cfg, progress=False).model_path)
    ir, before = tuned.synth.reverb_ir.detach(), base.synth.reverb_ir.detach()
    assert ((ir - before).pow(2).sum() / before.pow(2).sum()).sqrt() < 0.01
    # the violin's is a free impulse response (trained tap by tap), no room: a clear error
    cfg = replace(cfg, init="violin-tiny")
    with pytest.raises(fastddsp.UserError, match="not a decaying room"):
        train(data_dir, tmp_path / "ft2", cfg, progress=False)
    assert not (tmp_path / "ft2.fddsp").exists()
    with pytest.raises(fastddsp.UserError, match="--init"):
        TrainConfig(reverb="init")


def test_a_teacher_adds_its_clips_and_is_recorded(data_dir, tmp_path, monkeypatch):
    import fastddsp.training.train as train_module
    made, original = [], train_module.teacher_clips

    def counting(clips, synthesize, variants, sample_rate, frame_rate, seed=0):
        made.append(original(clips, synthesize, variants, sample_rate, frame_rate, seed))
        return made[-1]

    monkeypatch.setattr(train_module, "teacher_clips", counting)
    cfg = TrainConfig(preset="tiny", teacher="trumpet-tiny", teacher_variants=2, steps=2,
                      batch_size=2, val_every=1000)
    model = fastddsp.load(train(data_dir, tmp_path / "t", cfg, progress=False).model_path)
    assert model.stats["training"]["teacher"] == "trumpet-tiny"
    assert model.stats["training"]["teacher_variants"] == 2
    # two clips per training file (three of the four; one is held out), played by the teacher
    assert len(made) == 1 and len(made[0]) == 6
    assert all(np.abs(c.audio).max() > 1e-3 for c in made[0])
    # the dataset's statistics (for timbre transfer) stay the recordings'
    assert model.stats["pitch_midi"] == json.loads(
        (data_dir / "manifest.json").read_text())["stats"]["pitch_midi"]
    # a teacher at another rate cannot play the data's controls
    other = fastddsp.Model.from_preset("tiny", sample_rate=22050, frame_rate=250.0)
    other.save(tmp_path / "other.fddsp")
    with pytest.raises(fastddsp.UserError, match="22050 Hz"):
        train(data_dir, tmp_path / "t2", replace(cfg, teacher=str(tmp_path / "other.fddsp")),
              progress=False)
    with pytest.raises(fastddsp.UserError, match="unknown model"):
        train(data_dir, tmp_path / "t3", replace(cfg, teacher="no-such-model"), progress=False)
    assert not (tmp_path / "t2.fddsp").exists() and not (tmp_path / "t3.fddsp").exists()


def test_the_model_file_holds_the_moving_average_of_the_weights(data_dir, tmp_path):
    cfg = TrainConfig(preset="tiny", steps=40, batch_size=2, lr=3e-3, val_every=1000,
                      checkpoint_every=20, ema=0.9)
    r = train(data_dir, tmp_path / "m", cfg, progress=False)
    saved = fastddsp.load(r.model_path).decoder.state_dict()
    ckpt = read_checkpoint(r.run_dir / "checkpoints" / "last.ckpt")
    average = {k[len("model.decoder."):]: v for k, v in ckpt["state_dict"].items()
               if k.startswith("model.decoder.")}
    last = {k[len("model.decoder."):]: v for k, v in ckpt["current_model_state"].items()
            if k.startswith("model.decoder.")}
    name = "proj.weight"
    assert torch.allclose(saved[name], average[name])
    assert not torch.allclose(saved[name], last[name], atol=1e-5)
    cfg.ema = 0.0  # off: the file holds the last weights
    r = train(data_dir, tmp_path / "plain", cfg, progress=False)
    ckpt = read_checkpoint(r.run_dir / "checkpoints" / "last.ckpt")
    assert "current_model_state" not in ckpt
    assert torch.allclose(fastddsp.load(r.model_path).decoder.state_dict()[name],
                          ckpt["state_dict"]["model.decoder." + name])


def test_weight_decay_shrinks_the_network_and_spares_the_room(data_dir, tmp_path):
    def trained(weight_decay: float, name: str):
        cfg = TrainConfig(preset="tiny", steps=10, batch_size=2, lr=3e-3, val_every=1000,
                          checkpoint_every=10, ema=0.0, weight_decay=weight_decay)
        r = train(data_dir, tmp_path / name, cfg, progress=False)
        return read_checkpoint(r.run_dir / "checkpoints" / "last.ckpt")

    def decoder_norm(ckpt) -> float:  # of its convolution and linear weights
        return float(torch.cat([v.flatten() for k, v in ckpt["state_dict"].items()
                                if k.startswith("model.decoder.") and v.ndim >= 2]).norm())

    plain, decayed = trained(0.0, "plain"), trained(20.0, "decayed")
    # each step multiplies the weights by 1 - lr x 20 = 0.94: 10 steps leave about 0.54 of them
    assert decoder_norm(decayed) < 0.75 * decoder_norm(plain)
    # the room's log decay times (from log 0.25 s = -1.39) are not pulled to 0: decayed at the
    # room's rate (x(1 - 0.03 x 20) a step), 10 steps would leave 0.0001 of them
    assert (decayed["state_dict"]["room.log_rt60"] < -0.8).all()


def test_cli_init_errors_are_one_line(data_dir, tmp_path, capsys):
    from fastddsp.cli.main import run
    out = tmp_path / "ft.fddsp"
    assert run(["train", str(data_dir), "--init", "violin-tiny-q", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "int8" in err and len(err.splitlines()) == 1 and not out.exists()
    assert run(["train", str(data_dir), "--init", "violin-tiny", "--preset", "full",
                "-o", str(out)]) == 2
    assert "is a tiny model" in capsys.readouterr().err


def test_quiet_training_prints_only_its_summary(data_dir, tmp_path):
    out = tmp_path / "m.fddsp"
    proc = subprocess.run([sys.executable, "-m", "fastddsp", "train", str(data_dir), "--preset",
                           "tiny", "-o", str(out), "--steps", "3", "--batch-size", "2",
                           "--val-every", "2", "--checkpoint-every", "2",
                           "--unvoiced-shift", "7", "--gain-db", "9",
                           "--weight-decay", "0.5", "--teacher", "trumpet-tiny",
                           "--teacher-variants", "2",
                           "--max-harmonic-hz", "4000", "--noise-floor", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    config = json.loads((out.with_suffix(".run") / "train_config.json").read_text())
    assert config["unvoiced_shift"] == 7.0 and config["gain_db"] == 9.0
    assert config["weight_decay"] == 0.5
    assert config["teacher"] == "trumpet-tiny" and config["teacher_variants"] == 2
    assert config["max_harmonic_hz"] == 4000.0 and config["noise_floor"] is True
    assert fastddsp.load(out).config.max_harmonic_hz == 4000.0
    # gone: Lightning's advertisement, its internal deprecation, its note on a default, its list
    # of the accelerators this machine lacks and its note on what the checkpoints (step 2, after
    # its validation, and the last step) hold
    for noise in ("litlogger", "LeafSpec", "100% of the batches", "TPU available: False",
                  "weights_only"):
        assert noise not in proc.stdout + proc.stderr
    assert f"wrote {out}" in proc.stdout + proc.stderr


def test_resuming_a_finished_run_writes_the_model_again(data_dir, tmp_path, capsys):
    from fastddsp.cli.main import run
    args = ["train", str(data_dir), "-o", str(tmp_path / "m.fddsp"), "--steps", "2",
            "--batch-size", "2", "--val-every", "2", "--checkpoint-every", "2", "--quiet"]
    assert run(args) == 0
    assert "steps 0->2 in" in capsys.readouterr().out
    (tmp_path / "m.fddsp").unlink()
    assert run([*args, "--resume"]) == 0
    assert "steps 2->2 (nothing left to train)" in capsys.readouterr().out
    assert fastddsp.load(tmp_path / "m.fddsp").stats["training"]["steps"] == 2


@pytest.fixture(scope="module")
def noise_finetune(data_dir, tmp_path_factory):
    """A model of the synthetic instrument and a data folder that fine-tunes it on noise: the
    validation loss on the instrument's held-out take rises after a while."""
    root = tmp_path_factory.mktemp("noise")
    first = train(data_dir, root / "a", TrainConfig(preset="tiny", steps=40, batch_size=4,
                                                   lr=3e-3, val_every=40), progress=False)
    rng = np.random.default_rng(0)
    (root / "audio").mkdir()
    for i in range(2):
        sf.write(root / "audio" / f"noise{i}.wav", 0.1 * rng.standard_normal(5 * 16000), 16000)
    shutil.copy(data_dir.parent / "audio" / "take3.wav", root / "audio" / "take3.wav")
    prepare_dataset(root / "audio", root / "data", pitch="fast", val_names=["take3.wav"])
    return root / "data", str(first.model_path)


def test_keep_best_writes_the_weights_of_the_lowest_validation_loss(noise_finetune, tmp_path):
    data, init = noise_finetune
    cfg = TrainConfig(preset=None, init=init, steps=24, batch_size=4, lr=3e-3, val_every=8,
                      checkpoint_every=24, keep="best")
    r = train(data, tmp_path / "m", cfg, progress=False)
    val = read_losses(r.run_dir)["val_loss"]
    assert len(val) == 3 and val[-1][1] > min(v for _, v in val)
    assert r.final_val_loss == pytest.approx(min(v for _, v in val), abs=1e-5)
    ckpts = r.run_dir / "checkpoints"
    best = read_checkpoint(ckpts / "best.ckpt")
    last = read_checkpoint(ckpts / "last.ckpt")
    assert r.kept_step == best["global_step"] < last["global_step"] == 24
    model = fastddsp.load(r.model_path)
    assert (model.stats["training"]["kept_step"], model.stats["training"]["steps"]) == (
        r.kept_step, 24)
    weights = model.decoder.state_dict()
    assert all(torch.allclose(v, best["state_dict"]["model.decoder." + k])
               for k, v in weights.items())
    assert not all(torch.allclose(v, last["state_dict"]["model.decoder." + k])
                   for k, v in weights.items())


def test_patience_stops_after_validations_without_a_new_best(noise_finetune, tmp_path):
    data, init = noise_finetune
    cfg = TrainConfig(preset=None, init=init, steps=80, batch_size=4, lr=3e-3, val_every=8,
                      checkpoint_every=80, keep="best", patience=1)
    r = train(data, tmp_path / "m", cfg, progress=False)
    val = [v for _, v in read_losses(r.run_dir)["val_loss"]]
    # stops at the first validation that is no better than the one before it
    worse = next(i for i in range(1, len(val)) if val[i] >= min(val[:i]))
    assert len(val) == worse + 1 < 10
    assert r.last_step == 8 * len(val)
    assert r.final_val_loss == pytest.approx(min(val), abs=1e-5)
    assert fastddsp.load(r.model_path).stats["training"]["steps"] == r.last_step


def test_keep_best_needs_validation_files(tmp_path):
    root = tmp_path
    write_instrument(root / "audio", n_files=2, seconds=5.0)
    prepare_dataset(root / "audio", root / "data", pitch="fast", val_fraction=0.0)
    with pytest.raises(fastddsp.UserError, match="--keep best needs validation files"):
        train(root / "data", root / "m", TrainConfig(steps=2, keep="best"), progress=False)
    with pytest.raises(fastddsp.UserError, match="--patience needs validation files"):
        train(root / "data", root / "m", TrainConfig(steps=2, patience=3), progress=False)


def test_a_diverging_run_stops_with_a_clear_error(data_dir, tmp_path):
    cfg = TrainConfig(preset="tiny", steps=200, batch_size=4, lr=1e3, ema=0.0, val_every=1000)
    with pytest.raises(fastddsp.UserError, match="training diverged at step"):
        train(data_dir, tmp_path / "m", cfg, progress=False)
    assert not (tmp_path / "m.fddsp").exists()


def test_last_checkpoint_holds_the_validation_of_its_own_step(noise_finetune, tmp_path):
    """last.ckpt is written before the validation of the same step; it is written again after
    it, so a resumed run's early stopping counts every validation, the last one included."""
    data, init = noise_finetune
    cfg = TrainConfig(preset=None, init=init, steps=24, batch_size=4, lr=3e-3, val_every=8,
                      checkpoint_every=8, keep="best", patience=5)
    r = train(data, tmp_path / "m", cfg, progress=False)
    val = [v for _, v in read_losses(r.run_dir)["val_loss"]]
    assert len(val) == 3
    last = read_checkpoint(r.run_dir / "checkpoints" / "last.ckpt")
    (stopping,) = [v for k, v in last["callbacks"].items() if k.startswith("EarlyStopping")]
    best_at = int(np.argmin(val))
    assert float(stopping["best_score"]) == pytest.approx(val[best_at], abs=1e-5)
    assert stopping["wait_count"] == len(val) - 1 - best_at
    cfg.steps = 40
    r = train(data, tmp_path / "m", cfg, resume=True, progress=False)
    steps = [s for s, _ in read_losses(r.run_dir)["val_loss"]]
    assert (r.first_step, r.last_step) == (24, 40) and len(steps) == len(set(steps)) == 5


def test_cli_says_when_no_validation_will_run(data_dir, tmp_path, capsys):
    from fastddsp.cli.main import run

    out = tmp_path / "few.fddsp"
    assert run(["train", str(data_dir), "--steps", "2", "--batch-size", "2", "--quiet",
                "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "--steps 2 is fewer than --val-every 250: no validation will run" in captured.err
    assert f"wrote {out}" in captured.out


def test_the_progress_bar_counts_steps_and_the_last_line_says_where_everything_went(
        data_dir, tmp_path, capsys):
    from fastddsp.cli.main import run

    out = tmp_path / "bar.fddsp"
    # 4 training files of 7.5 s at batch 2: an epoch is a few steps, the run 7 steps
    assert run(["train", str(data_dir), "-o", str(out), "--steps", "7", "--batch-size", "2",
                "--val-every", "5", "--checkpoint-every", "5"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    counts = [(int(a), int(b)) for a, b in re.findall(r"training steps: .*?(\d+)/(\d+)", text)]
    assert counts and {total for _, total in counts} == {7}, text  # one bar over the run
    assert max(n for n, _ in counts) == 7
    assert "Epoch" not in text
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith(f"wrote {out}: steps 0->7")
    assert "training loss" in last and "validation loss" in last
    assert f"validation audio in {out.with_suffix('.run') / 'audio'}" in last


CREDIT = "Partita No. 2 by J. S. Bach, played by A. Violinist, CC BY 3.0, example.org/x"


def test_a_model_carries_the_attribution_of_its_recordings(tmp_path, capsys):
    from fastddsp.cli.main import run
    from fastddsp.training.quantize import quantize_model

    audio = tmp_path / "audio"
    write_instrument(audio, n_files=2, seconds=5.0)
    (audio / "ATTRIBUTION.txt").write_text(CREDIT.replace(", ", ",\n  ") + "\n")
    prepare_dataset(audio, tmp_path / "data", pitch="fast")   # read from ATTRIBUTION.txt
    assert json.loads((tmp_path / "data" / "manifest.json").read_text())["attribution"] == CREDIT
    cfg = TrainConfig(preset="tiny", steps=2, batch_size=2, val_every=1000)
    model = fastddsp.load(train(tmp_path / "data", tmp_path / "m", cfg, progress=False).model_path)
    assert model.attribution == CREDIT and model.describe()["attribution"] == CREDIT
    assert run(["info", str(tmp_path / "m.fddsp")]) == 0
    assert f"attribution: {CREDIT}\n" in capsys.readouterr().out
    clip = fastddsp.load("violin-tiny")
    assert clip.attribution == ""  # the bundled models: none yet
    # int8 keeps it; fine-tuning on other recordings adds theirs
    q = quantize_model(model, tmp_path / "data")
    q.save(tmp_path / "q.fddsp")
    assert fastddsp.load(tmp_path / "q.fddsp").attribution == CREDIT
    prepare_dataset(audio, tmp_path / "data2", pitch="fast", attribution="Other take, CC0")
    cfg = TrainConfig(preset=None, init=str(tmp_path / "m.fddsp"), steps=2, batch_size=2,
                      val_every=1000, reverb="free")
    tuned = fastddsp.load(train(tmp_path / "data2", tmp_path / "t", cfg,
                                progress=False).model_path)
    assert tuned.attribution == f"{CREDIT}; Other take, CC0"
