import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import fastddsp
from fastddsp.data import prepare_dataset
from fastddsp.train import TrainConfig, read_losses, train
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
                state = torch.load(ckpt, map_location="cpu", weights_only=False)
                if state["global_step"] >= 10:
                    break
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
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


def test_the_room_trains_and_is_baked_into_the_model_file(data_dir, tmp_path):
    from fastddsp.dsp.reverb import initial_impulse_response
    start = initial_impulse_response(16000, 16000)
    cfg = TrainConfig(preset="tiny", steps=30, batch_size=4, lr=3e-3, val_every=1000)
    model = fastddsp.load(train(data_dir, tmp_path / "decay", cfg, progress=False).model_path)
    ir = model.synth.reverb_ir.detach()
    assert model.synth.room is None
    # a decaying room, not the free IR's start: the baked IR is noise of other values, and
    # its last 0.1 s is much quieter than its first
    assert not torch.allclose(ir, start, atol=1e-3)
    assert ir[-1600:].pow(2).mean() < 0.1 * ir[1:1601].pow(2).mean()
    ckpt = torch.load(tmp_path / "decay.run" / "checkpoints" / "last.ckpt",
                      map_location="cpu", weights_only=False)
    rt60 = ckpt["state_dict"]["model.synth.room.log_rt60"].exp()
    assert not torch.allclose(rt60, torch.full_like(rt60, 0.25))  # it learned
    cfg.reverb = "free"
    free = fastddsp.load(train(data_dir, tmp_path / "free", cfg, progress=False).model_path)
    free_ir = free.synth.reverb_ir.detach()
    assert not torch.allclose(free_ir, start, atol=1e-3)  # every sample learned directly
    assert (free_ir[8000:] - start[8000:]).abs().max() > 1e-2


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
                                 {"reverb": "plate"}, {"max_minutes": 0.0}])
def test_bad_training_options_are_user_errors(bad):
    with pytest.raises(fastddsp.UserError):
        TrainConfig(**bad)
