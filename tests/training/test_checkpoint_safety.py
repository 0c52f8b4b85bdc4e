"""A run folder or --init file from someone else must not run their code nor delete files
outside the run; interrupted writes leave no litter for long.

The crafted checkpoints carry a pickle payload that, unpickled, creates a marker file. The
attacks run with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, which users set to load old checkpoints
and which turns torch's safe default off wherever the caller does not ask for it explicitly."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import torch

from fastddsp.cli.main import run
from fastddsp.errors import UserError
from fastddsp.training.data import prepare_dataset
from fastddsp.training.train import TrainConfig, read_checkpoint, train
from tests.synthetic import write_instrument

UNSAFE_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
RUN_ARGS = ["--steps", "4", "--batch-size", "2", "--val-every", "2", "--checkpoint-every", "2",
            "--quiet"]


class _Touch:
    """Unpickled, creates ``marker``: what a payload that runs code would do."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _evil_checkpoint(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    torch.save({"state_dict": {}, "global_step": 0, "epoch": 0, "payload": _Touch(marker)},
               path)
    return path


def assert_refused(proc, checkpoint, marker, out) -> None:
    """The resume ran no code from ``checkpoint``, said so in one line, exit 2, wrote no model."""
    assert not marker.exists()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"fastddsp: error: {checkpoint} is not a plain checkpoint (it holds objects that could "
        f"run code: getattr); refusing to load it"]
    assert not out.exists()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    write_instrument(root / "audio", n_files=2, seconds=5.0)
    prepare_dataset(root / "audio", root / "data", pitch="fast", val_names=["take1.wav"])
    return root / "data"


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    """A --keep best run of 4 steps (RUN_ARGS): checkpoints/last.ckpt and best.ckpt."""
    root = tmp_path_factory.mktemp("finished")
    cfg = TrainConfig(steps=4, batch_size=2, val_every=2, checkpoint_every=2, keep="best")
    return train(data_dir, root / "m", cfg, progress=False).run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return pathlib.Path(shutil.copytree(finished_run, tmp_path / "run"))


@pytest.fixture
def unsafe_env(monkeypatch):
    monkeypatch.setenv(UNSAFE_ENV, "1")


def test_the_crafted_payload_runs_code_when_unpickled(tmp_path):
    probe = tmp_path / "probe"
    _evil_checkpoint(tmp_path / "evil.ckpt", probe)
    torch.load(tmp_path / "evil.ckpt", weights_only=False)
    assert probe.exists()  # the attack is real: only the weights-only reader stops it


def test_checkpoints_of_a_run_are_plain_data(finished_run):
    for name in ("last.ckpt", "best.ckpt"):
        state = read_checkpoint(finished_run / "checkpoints" / name)
        assert state["global_step"] > 0 and state["state_dict"]


def _resume(data_dir: pathlib.Path, out: pathlib.Path, run_dir: pathlib.Path, *options: str
            ) -> subprocess.CompletedProcess:
    """``fastddsp train --resume`` in its own process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "fastddsp", "train", str(data_dir), "-o",
                           str(out), "--run-dir", str(run_dir), "--resume", *options, *RUN_ARGS],
                          capture_output=True, text=True, env={**os.environ, UNSAFE_ENV: "1"},
                          timeout=300)


def test_resume_refuses_a_last_checkpoint_that_would_run_code(data_dir, tmp_path):
    marker, out, run_dir = tmp_path / "PWNED", tmp_path / "m.fddsp", tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    last = _evil_checkpoint(run_dir / "checkpoints" / "last.ckpt", marker)
    proc = _resume(data_dir, out, run_dir)
    assert_refused(proc, last, marker, out)


def test_resume_refuses_a_best_checkpoint_that_would_run_code(data_dir, run_copy, tmp_path):
    """last.ckpt is the run's own; the best.ckpt its state names (read to restore the best
    score, and for the model file) is not."""
    marker, out = tmp_path / "PWNED", tmp_path / "m.fddsp"
    best = _evil_checkpoint(run_copy / "checkpoints" / "best.ckpt", marker)
    proc = _resume(data_dir, out, run_copy, "--keep", "best")
    assert_refused(proc, best, marker, out)


@pytest.mark.parametrize("damage", ["truncated", "empty", "text", "not a dict", "a folder"])
def test_damaged_checkpoints_are_refused_in_one_line(finished_run, tmp_path, damage):
    path = tmp_path / "last.ckpt"
    good = (finished_run / "checkpoints" / "last.ckpt").read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("hello\n" * 20)
    elif damage == "not a dict":
        torch.save([1, 2, 3], path)
    else:
        path.mkdir()
    with pytest.raises(UserError, match="refusing to load it") as caught:
        read_checkpoint(path)
    assert len(str(caught.value).splitlines()) == 1


def test_resume_from_a_truncated_checkpoint_is_a_user_error(data_dir, run_copy, tmp_path,
                                                            capsys):
    last = run_copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    out = tmp_path / "m.fddsp"
    assert run(["train", str(data_dir), "-o", str(out), "--run-dir", str(run_copy), "--resume",
                *RUN_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"fastddsp: error: {last} is damaged or not a checkpoint; "
                                f"refusing to load it"]
    assert not out.exists()


@pytest.mark.parametrize("name", ["evil.fddsp", "evil.ckpt"])
def test_init_refuses_a_pickle_file(data_dir, tmp_path, capsys, unsafe_env, name):
    marker, out = tmp_path / "PWNED", tmp_path / "m.fddsp"
    evil = _evil_checkpoint(tmp_path / name, marker)
    code = run(["train", str(data_dir), "--init", str(evil), "-o", str(out), *RUN_ARGS])
    assert not marker.exists()
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(evil) in err
    assert not out.exists()


def test_a_resumed_run_deletes_nothing_outside_its_checkpoints(data_dir, run_copy, tmp_path):
    """Lightning deletes the best (or last) file a new one replaces, folders recursively: a
    checkpoint naming ``checkpoints/../../x`` as its previous files must not delete x."""
    victim_file = tmp_path / "victim.ckpt"
    victim_file.write_text("someone's file")
    victim_dir = tmp_path / "victim"
    (victim_dir / "inside").mkdir(parents=True)
    ckpts = run_copy / "checkpoints"
    last = read_checkpoint(ckpts / "last.ckpt")
    for state in (v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint")):
        state["dirpath"] = os.path.realpath(ckpts)  # as if written in place
        if state["monitor"] == "val_loss":  # a new best replaces "victim.ckpt"
            outside = str(ckpts / ".." / ".." / "victim.ckpt")
            state.update(best_model_path="", kth_best_model_path=outside,
                         best_k_models={outside: torch.tensor(1e9)},
                         best_model_score=torch.tensor(1e9), kth_value=torch.tensor(1e9))
        else:  # the next last.ckpt replaces the folder "victim"
            state["last_model_path"] = str(ckpts / ".." / ".." / "victim")
    torch.save(last, ckpts / "last.ckpt")
    cfg = TrainConfig(steps=6, batch_size=2, val_every=2, checkpoint_every=2, keep="best")
    r = train(data_dir, tmp_path / "m", cfg, run_dir=run_copy, resume=True, progress=False)
    assert victim_file.read_text() == "someone's file" and (victim_dir / "inside").is_dir()
    assert r.last_step == 6 and r.kept_step is not None
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "last.ckpt"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_train_removes_the_temporary_files_of_interrupted_writes(data_dir, run_copy, tmp_path):
    dead, live = _dead_pid(), os.getpid()
    ckpts = run_copy / "checkpoints"
    stale = [ckpts / f".last.ckpt.{dead}.tmp-abc.ckpt", tmp_path / f".m.fddsp.{dead}.tmp-x.fddsp"]
    kept = [ckpts / f".last.ckpt.{live}.tmp-def.ckpt", tmp_path / f".m.fddsp.{live}.tmp-y.fddsp"]
    for path in stale + kept:
        path.write_bytes(b"half a file")
    cfg = TrainConfig(steps=4, batch_size=2, val_every=2, checkpoint_every=2, keep="best")
    r = train(data_dir, tmp_path / "m", cfg, run_dir=run_copy, resume=True, progress=False)
    assert (r.first_step, r.last_step) == (4, 4)  # nothing trained, nothing written in ckpts
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
