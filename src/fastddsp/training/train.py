"""Training on PyTorch Lightning: a prepared data folder -> a model file.

Adam (3e-4) with exponential decay (x0.98 every 10k steps, as DDSP), gradient clipping at 3.0,
multi-scale spectral loss. Multi-GPU DDP and mixed precision are Lightning flags. Checkpoints
are written atomically and read as plain data (``read_checkpoint``: a run folder from someone
else runs none of their code); ``resume`` continues from the last one at the same step. Logs
(CSV) hold the training and validation losses and seconds per step; validation audio is written
as wavs.
``init`` starts from a trained model's decoder (fine-tuning) instead of a fresh network; with
``reverb="free"`` its impulse response is continued too, with ``"decay"`` a new room is learned
(the new recordings' room), with ``"init"`` the decaying room that the model's impulse response
was baked from is fitted to it and trained on (more recordings from the same room).
``teacher`` adds clips that a trained model plays from varied copies of the training clips'
controls (``data.teacher_clips``: distillation, for instruments with little audio).
``keep="best"`` writes the weights of the lowest validation loss instead of the last ones,
``patience`` stops a run that has stopped improving, and a loss that is no longer finite ends
the run with a ``UserError`` rather than a model of NaNs.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import pickle
import re
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    TQDMProgressBar,
    WeightAveraging,
)

from ..atomic import atomic_path, clean_stale_temps
from ..dsp.spectral import multiscale_spectral_distance
from ..errors import UserError
from ..features.pitch import get_tracker
from ..io import write_audio
from ..models import load
from ..models.config import PRESETS, preset_config
from ..models.model import Model
from .data import Clip, ExampleDataset, load_clips, teacher_clips
from .room import DecayingReverb, attach_room, bake_room

ROOM_LR_SCALE = 10.0  # learning-rate factor of the decaying reverb's and noise floor's parameters
ROOM_FIT_TOLERANCE = 0.05  # --reverb init: the largest relative error of the room fitted to an IR


def _option(default: Any, help: str | None = None, **settings: Any) -> Any:
    """A ``TrainConfig`` field that is also a ``fastddsp train`` option, ``--`` and its name
    with dashes: its default, help and argparse settings (``choices``, ``metavar``) are given
    here once, and the command makes the option from them (its value type from the field's)."""
    return field(default=default, metadata={"option": {"help": help, **settings}})


@dataclass
class TrainConfig:
    """How ``train`` trains. Each field but ``decay_rate`` and ``grad_clip`` is also an option
    of ``fastddsp train`` (``_option``)."""

    preset: str | None = _option(None, "network size (default tiny, or the --init model's)",
                                 choices=list(PRESETS))  # None: tiny, or the ``init`` model's
    init: str | None = _option(
        None, "start from this model (file or bundled name): fine-tune its decoder on DATA_DIR "
        "instead of training a new network", metavar="MODEL")
    teacher: str | None = _option(
        None, "train also on clips this model (file or bundled name) plays from varied copies "
        "of the training clips' controls: other pitches (-5.5 to +2.5 semitones), tempi (x0.7 "
        "to 1.5), gains and longer rests; a smaller model that generalizes better teaches a "
        "larger one (distillation)", metavar="MODEL")
    teacher_variants: int = _option(1, "teacher clips per training clip (default 1)",
                                    metavar="N")
    steps: int = _option(3000, "training steps")
    batch_size: int = _option(8, "examples per step")
    crop_seconds: float = _option(
        1.0, "random crop of each 4 s example per step (0: whole examples)")
    lr: float = _option(3e-4, "Adam learning rate")
    decay_rate: float = 0.98  # not an option
    decay_steps: int = _option(
        10000, "learning rate x0.98 every this many steps (default 10000, as DDSP)")
    grad_clip: float = 3.0  # not an option
    weight_decay: float = _option(
        0.0, "decoupled weight decay of the decoder (as AdamW: each step shrinks its weights by "
        "lr x W), against overfitting a few minutes of audio (default 0: off)", metavar="W")
    pitch_shifts: tuple[float, ...] = _option(
        (-1.0, 0.0, 1.0),
        "semitone shifts of the training audio, comma-separated (default -1,0,1)")
    gain_db: float = _option(
        6.0, "random gain of each training example, up to this many dB either way, its "
        "loudness moved to match (default 6; 0: off)", metavar="DB")
    unvoiced_shift: float = _option(
        0.0, "move the f0 of unvoiced frames (rests hold the last note's f0) by a random shift "
        "of up to this many semitones per example, so that rests do not depend on the note "
        "before them (default 0: off)", metavar="SEMITONES")
    max_harmonic_hz: float | None = _option(
        None, "harmonic bandwidth: no harmonics above this frequency, the filtered noise alone "
        "plays there (default: up to Nyquist, or the --init model's; 0: Nyquist)", metavar="HZ")
    noise_floor: bool | None = _option(
        None, "learn a constant background noise per noise band (the recording's room tone, "
        "heard in rests) beside the decoder's noise (default: off, or as the --init model)")
    reverb: str = _option(
        "decay", "room model while training: per-band decaying noise (default) or a free "
        "impulse response, as DDSP (with --init: free continues the model's own impulse "
        "response, decay learns a new room, init continues the --init model's decaying room: "
        "recordings from the same room)", choices=["decay", "free", "init"])
    ema: float = _option(
        0.999, "the model file holds the exponential moving average of the weights with this "
        "decay (default 0.999; 0: the last weights)")
    keep: str = _option(
        "last", "weights the model file holds: the last (default) or those of the lowest "
        "validation loss (early stopping; needs validation files)", choices=["last", "best"])
    patience: int | None = _option(
        None, "stop after N validations without a new lowest validation loss (with --keep "
        "best: early stopping)", metavar="N")
    max_minutes: float | None = _option(
        None, "stop after this much training time (counted across resumes) and write the "
        "model as it is")
    val_every: int = _option(250, "steps between validations")
    checkpoint_every: int = _option(100,
                                    "steps between checkpoints (what --resume continues)")
    seed: int = _option(0, "seed of the initial weights and of the example order")
    accelerator: str = _option("cpu", "Lightning accelerator: cpu, gpu, auto")
    devices: int | str = _option(1, "Lightning devices: a count, a list, or auto")
    precision: str = _option("32-true", "Lightning precision, e.g. bf16-mixed")

    def __post_init__(self) -> None:
        if self.preset is None and self.init is None:
            self.preset = "tiny"
        checks = [(self.steps >= 1, "--steps must be at least 1"),
                  (self.batch_size >= 1, "--batch-size must be at least 1"),
                  (self.lr > 0, "--lr must be positive"),
                  (self.decay_steps >= 1, "--decay-steps must be at least 1"),
                  (self.crop_seconds >= 0, "--crop-seconds must not be negative"),
                  (self.unvoiced_shift >= 0, "--unvoiced-shift must not be negative"),
                  (self.teacher_variants >= 1, "--teacher-variants must be at least 1"),
                  (0 <= self.gain_db <= 40, "--gain-db must be between 0 and 40"),
                  (self.weight_decay >= 0 and self.lr * self.weight_decay < 1,
                   "--weight-decay must be at least 0 and less than 1/--lr"),
                  (self.reverb in ("decay", "free", "init"),
                   "--reverb must be decay, free or init"),
                  (self.reverb != "init" or self.init is not None,
                   "--reverb init continues the room of the --init model; name one"),
                  (self.max_harmonic_hz is None or self.max_harmonic_hz >= 0,
                   "--max-harmonic-hz must not be negative (0: up to Nyquist)"),
                  (0 <= self.ema < 1, "--ema must be in [0, 1)"),
                  (self.keep in ("last", "best"), "--keep must be last or best"),
                  (self.patience is None or self.patience >= 1, "--patience must be at least 1"),
                  (self.max_minutes is None or self.max_minutes > 0,
                   "--max-minutes must be positive"),
                  (self.val_every >= 1 and self.checkpoint_every >= 1,
                   "--val-every and --checkpoint-every must be at least 1")]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint read as plain data, the only way this module reads one: torch's weights-only
    unpickler builds tensors, containers, numbers and strings but calls no function the file
    names, so a run folder from someone else cannot run code. What Lightning writes for these
    runs is all plain (no type needs allowing). Anything else is a one-line ``UserError``."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # a pickle protocol torch does not write: refused anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        named = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if named:
            raise UserError(f"{path} is not a plain checkpoint (it holds objects that could run "
                            f"code: {named.group(1)}); refusing to load it") from None
        raise UserError(f"{path} is damaged or not a checkpoint; refusing to load it") from None
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except Exception:  # truncated, empty, a folder, another format: torch's errors vary
        raise UserError(f"{path} is damaged or not a checkpoint; refusing to load it") from None
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise UserError(f"{path} is not a training checkpoint; refusing to load it")
    return state


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO: writes are atomic (temporary file, fsync, rename), reads are
    ``read_checkpoint``'s (plain data only) and removals delete single files, never folders.
    ``preloaded``: checkpoints already read (path -> state), each handed out once."""

    def __init__(self, preloaded: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.preloaded = dict(preloaded or {})

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_path(Path(path), suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: str | Path, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        state = self.preloaded.pop(str(path), None)
        return state if state is not None else read_checkpoint(path)  # on the CPU

    def remove_checkpoint(self, path: str | Path) -> None:
        if Path(path).is_file() or Path(path).is_symlink():
            Path(path).unlink(missing_ok=True)


class StepProgressBar(TQDMProgressBar):
    """One bar over the run's steps, first to last. (Lightning's restarts at every epoch and
    counts its batches: with a few minutes of audio an epoch is a handful of steps.)"""

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:
            bar.reset(total=trainer.max_steps)
            bar.initial = 0
        bar.n = trainer.global_step
        bar.set_description("training steps")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        bar, step = self.train_progress_bar, trainer.global_step
        if bar is not None and self._should_update(step, trainer.max_steps):
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose state, on resume, matches the files in the run folder.

    Two of Lightning's habits would otherwise let a resumed run overwrite best.ckpt with worse
    weights. Its state is keyed to the absolute folder it was written in and dropped when the
    folder moved (renamed, copied off a GPU machine); paths are rebased instead. And last.ckpt
    is written before the validation of the same step, so the score it remembers can be older
    than best.ckpt; the best file's own record, written with it, wins. For the same reason the
    periodic checkpoint is written again after a validation at its own step: a run resumed from
    it has counted that validation (early stopping's patience and best score included), which
    it will not run again."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        every = self._every_n_train_steps
        if (self.save_last and not self.monitor and every and not trainer.sanity_checking
                and trainer.global_step % every == 0 and self.last_model_path):
            # every rank (it is collective); the whole state, as the periodic save writes it
            trainer.save_checkpoint(self.last_model_path, weights_only=False)

    @property
    def state_key(self) -> str:  # ModelCheckpoint's, so runs from before this class resume
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = self._rebased(state_dict)
        if self.monitor and state_dict.get("best_model_path"):
            best_file = Path(state_dict["best_model_path"])
            if best_file.is_file():
                saved = read_checkpoint(best_file)
                own = saved.get("callbacks", {}).get(self.state_key)
                if own and own.get("best_model_score") is not None:
                    state_dict = {**state_dict, **{k: v for k, v in self._rebased(own).items()
                                                   if k != "last_model_path"}}
        super().load_state_dict(state_dict)

    def _rebased(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state with its files in this run's checkpoint folder, whatever folder it names:
        Lightning deletes a replaced best or last file, so a path elsewhere (``../..``) would
        delete files outside the run. A name that is not a checkpoint file's is dropped."""
        new = self.dirpath
        if not new:
            return state

        def rebase(path: Any) -> Any:
            name = Path(path).name if isinstance(path, str) else ""
            return str(Path(new) / name) if name.endswith(".ckpt") else ""
        return {**state, "dirpath": new,
                **{k: rebase(state.get(k)) for k in
                   ("best_model_path", "kth_best_model_path", "last_model_path")},
                "best_k_models": {rebase(k): v for k, v in state.get("best_k_models", {}).items()
                                  if rebase(k)}}


class DDSPTask(L.LightningModule):
    """The model (and, when training a room, the room that generates its IR) as Lightning
    trains it."""

    def __init__(self, model: Model, cfg: TrainConfig, audio_dir: Path | None = None,
                 room: DecayingReverb | None = None):
        super().__init__()
        self.model = model
        self.room = room
        self.cfg = cfg
        self.audio_dir = audio_dir
        self._t0: float | None = None

    def forward(self, f0, ld, generator=None):
        return self.model(f0, ld, generator,
                          reverb_ir=self.room() if self.room is not None else None)

    def training_step(self, batch, _):
        pred = self(batch["f0_hz"], batch["loudness_db"])
        # pitch-shifted examples are compared only on the band their audio still has
        loss = multiscale_spectral_distance(pred, batch["audio"], max_hz=batch["max_hz"],
                                            sample_rate=self.model.sample_rate)
        if not torch.isfinite(loss):
            raise UserError(f"training diverged at step {self.global_step} (the loss is "
                            f"{loss.item()}); start again with a lower --lr")
        self.log("train_loss", loss, prog_bar=True, on_step=True, batch_size=pred.shape[0])
        return loss

    def on_train_batch_start(self, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_before_optimizer_step(self, optimizer):
        # decoupled weight decay (as AdamW) of the decoder alone: the room, reverb and noise
        # floor are not pulled to 0, and the optimizer's state is plain Adam's either way
        if self.cfg.weight_decay:
            shrink = 1.0 - optimizer.param_groups[0]["lr"] * self.cfg.weight_decay
            with torch.no_grad():
                for p in self.model.decoder.parameters():
                    p.mul_(shrink)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self._t0 is not None:
            self.log("seconds_per_step", time.perf_counter() - self._t0, on_step=True)

    def validation_step(self, batch, batch_idx):
        gen = torch.Generator(device=batch["f0_hz"].device).manual_seed(batch_idx)
        pred = self(batch["f0_hz"], batch["loudness_db"], gen)
        loss = multiscale_spectral_distance(pred, batch["audio"])
        self.log("val_loss", loss, prog_bar=True, batch_size=pred.shape[0])
        if batch_idx == 0 and self.audio_dir is not None and self.trainer.is_global_zero:
            write_audio(self.audio_dir / f"val_step{self.global_step:06d}.wav",
                        pred[0].detach().float().cpu().numpy(), self.model.sample_rate)
        return loss

    def configure_optimizers(self):
        # the room's few log-gains and log-decay times, and the noise floor's log-magnitudes,
        # learn faster than the network weights: at the same rate they would need thousands
        # of steps to move from their start
        synth = self.model.synth
        fast = list(self.room.parameters()) if self.room is not None else []
        if synth.log_noise_floor is not None:
            fast.append(synth.log_noise_floor)
        fast_ids = {id(p) for p in fast}
        # the network's group first: the weight decay reads its rate from param_groups[0]
        groups = [{"params": [p for p in self.model.parameters() if id(p) not in fast_ids]}]
        if fast:
            groups.append({"params": fast, "lr": self.cfg.lr * ROOM_LR_SCALE})
        opt = torch.optim.Adam(groups, lr=self.cfg.lr)
        decay = self.cfg.decay_rate ** (1.0 / self.cfg.decay_steps)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def ema_average(decay: float):
    """An ``AveragedModel`` average: an exponential moving average whose decay ramps up as
    ``(1 + n) / (10 + n)`` to ``decay`` (n: updates so far), so short runs are not pinned to
    their initial weights."""
    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor | int
                ) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return averaged * d + current * (1.0 - d)
    return average


class _StepRecorder(Callback):
    """Remembers the first global step seen (how a resumed run proves where it started)."""

    def __init__(self) -> None:
        self.first_step: int | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.first_step is None:
            self.first_step = trainer.global_step


def read_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe file (JSON): its ``"train"`` object, or the whole file, as ``TrainConfig``
    field values (lists become tuples); unknown fields and malformed files are refused."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read the recipe {path}: {str(e).splitlines()[0]}") from None
    values = data.get("train", data) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise UserError(f"the recipe {path} must be a JSON object of training settings")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"the recipe {path} has unknown setting(s): {', '.join(unknown)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


@dataclass
class TrainResult:
    model_path: Path
    run_dir: Path
    first_step: int
    last_step: int
    seconds: float
    seconds_per_step: float
    final_val_loss: float | None  # of the weights in the model file (with keep="best": the best)
    kept_step: int | None = None  # with keep="best": the step whose weights were kept
    final_train_loss: float | None = None  # of the last training step


def train(data_dir: str | Path, output: str | Path, cfg: TrainConfig,
          run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True) -> TrainResult:
    output, run_dir, last = _run_paths(output, run_dir, resume)
    resumed = read_checkpoint(last) if resume else None  # refused before any work if unsafe
    init = _initial_model(cfg.init) if cfg.init else None
    if init is not None:
        if cfg.preset is None:
            cfg = replace(cfg, preset=init.config.preset)
        elif cfg.preset != init.config.preset:
            raise UserError(f"--init {cfg.init} is a {init.config.preset} model, not "
                            f"--preset {cfg.preset}")
    if resume:
        _check_resumable(run_dir, cfg)
    train_clips, manifest = load_clips(data_dir, "train")
    val_clips, _ = load_clips(data_dir, "val")
    settings = manifest["settings"]
    if not train_clips:
        raise UserError(f"{data_dir} has no training files")
    if (cfg.keep == "best" or cfg.patience) and not val_clips:
        option = "--keep best" if cfg.keep == "best" else "--patience"
        raise UserError(f"{option} needs validation files; {data_dir} has none")
    sr, fr = settings["sample_rate"], settings["frame_rate"]
    if cfg.teacher:
        train_clips += _teacher_clips(cfg, train_clips, sr, fr)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model, room = _build_model(cfg, init, manifest, data_dir, resume)
    loaders = _loaders(cfg, train_clips, val_clips, settings)
    audio_dir = run_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    task = DDSPTask(model, cfg, audio_dir, room)
    recorder = _StepRecorder()
    trainer, best = _trainer(cfg, run_dir, last, resumed, recorder, bool(val_clips),
                             len(loaders["train_dataloaders"]), progress)
    (run_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    task.train()  # Model() starts in eval mode; BatchNorm must learn its statistics
    t0 = time.perf_counter()
    trainer.fit(task, ckpt_path=str(last) if resume else None, **loaders)
    seconds = time.perf_counter() - t0
    if trainer.global_step % cfg.checkpoint_every:  # the last steps, so a longer --resume
        trainer.save_checkpoint(last, weights_only=False)  # continues from where it ended
    val = trainer.callback_metrics.get("val_loss")
    kept_step = None
    if best is not None and best.best_model_path:
        saved = read_checkpoint(best.best_model_path)
        task.load_state_dict(saved["state_dict"])
        kept_step, val = saved["global_step"], best.best_model_score
    model.eval()
    bake_room(model.synth, room)
    model.stats = {**model.stats, "training": {
        "preset": cfg.preset, "steps": trainer.global_step, "init": cfg.init,
        **({"teacher": cfg.teacher, "teacher_variants": cfg.teacher_variants}
           if cfg.teacher else {}),
        "kept_step": trainer.global_step if kept_step is None else kept_step,
        "train_seconds_audio": manifest.get("stats", {}).get("train_seconds"),
        "wall_seconds_last_segment": round(seconds, 1)}}
    model.save(output)
    first = recorder.first_step if recorder.first_step is not None else trainer.global_step
    done = trainer.global_step - first
    train_loss = trainer.callback_metrics.get("train_loss")
    return TrainResult(output, run_dir, first, trainer.global_step, seconds,
                       seconds / done if done else math.nan,
                       float(val) if val is not None else None, kept_step,
                       float(train_loss) if train_loss is not None else None)


def _run_paths(output: str | Path, run_dir: str | Path | None, resume: bool
               ) -> tuple[Path, Path, Path]:
    """(model file, run folder, its last checkpoint), checked against ``resume``, with what
    interrupted writes left behind cleaned up."""
    output = Path(output)
    if output.suffix == "":
        output = output.with_suffix(".fddsp")
    run_dir = Path(run_dir) if run_dir else output.with_suffix(".run")
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise UserError(f"--resume: no checkpoint at {last}")
    if not resume and last.is_file():
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it or "
                        f"choose another --run-dir")
    for folder in (ckpt_dir, output.parent):
        clean_stale_temps(folder)
    return output, run_dir, last


def _build_model(cfg: TrainConfig, init: Model | None, manifest: dict[str, Any],
                 data_dir: str | Path, resume: bool) -> tuple[Model, DecayingReverb | None]:
    """The network to train (new, or the ``--init`` model's weights) and its room, if any."""
    sr, fr = manifest["settings"]["sample_rate"], manifest["settings"]["frame_rate"]
    assert cfg.preset is not None
    config = preset_config(cfg.preset, sr, fr) if init is None else init.config
    shaping = {k: v for k, v in (("max_harmonic_hz", cfg.max_harmonic_hz),
                                 ("noise_floor", cfg.noise_floor)) if v is not None}
    config = replace(config, **shaping)
    if init is not None and (config.sample_rate, config.frame_rate) != (sr, fr):
        raise UserError(f"--init {cfg.init} runs at {config.sample_rate} Hz, "
                        f"{config.frame_rate:g} frames/s; {data_dir} was prepared at {sr} Hz, "
                        f"{fr:g} frames/s")
    model = Model(config, stats=manifest.get("stats", {}), seed=cfg.seed)
    credits = [init.attribution if init is not None else "", manifest.get("attribution", "")]
    model.attribution = "; ".join(dict.fromkeys(c for c in credits if c))  # (no repeats)
    if init is not None:  # a noise floor switched on (or off) by this run starts afresh (or goes)
        result = model.load_state_dict(init.state_dict(), strict=False)
        if {*result.missing_keys, *result.unexpected_keys} - {"synth.log_noise_floor"}:
            raise UserError(f"--init {cfg.init}: its weights do not fit the network")
    room = None
    if cfg.reverb in ("decay", "init"):  # a resumed run's room is in its checkpoint
        room, err = attach_room(model.synth, fit=cfg.reverb == "init" and not resume)
        if err is not None and err > ROOM_FIT_TOLERANCE:
            raise UserError(f"--reverb init: the impulse response of {cfg.init} is not a "
                            f"decaying room (the closest one is {100 * err:.0f} % off); use "
                            f"--reverb free to continue it or decay to learn a new room")
    return model, room


def _loaders(cfg: TrainConfig, train_clips: list[Clip], val_clips: list[Clip],
             settings: dict[str, Any]) -> dict[str, Any]:
    sr, fr = settings["sample_rate"], settings["frame_rate"]
    crop = max(1, round(cfg.crop_seconds * fr)) if cfg.crop_seconds else None
    voicing_threshold = get_tracker(settings["pitch"]).voicing_threshold
    train_ds = ExampleDataset(train_clips, sr, fr, settings["example_seconds"],
                              settings["hop_seconds"], crop_frames=crop, gain_db=cfg.gain_db,
                              pitch_shifts=cfg.pitch_shifts, unvoiced_shift=cfg.unvoiced_shift,
                              voicing_threshold=voicing_threshold, seed=cfg.seed)
    loaders: dict[str, Any] = {"train_dataloaders": torch.utils.data.DataLoader(
        train_ds, batch_size=min(cfg.batch_size, len(train_ds)), shuffle=True, drop_last=True)}
    if val_clips:
        val_ds = ExampleDataset(val_clips, sr, fr, settings["example_seconds"],
                                settings["hop_seconds"])
        loaders["val_dataloaders"] = torch.utils.data.DataLoader(val_ds, batch_size=4)
    return loaders


def _trainer(cfg: TrainConfig, run_dir: Path, last: Path, resumed: dict[str, Any] | None,
             recorder: Callback, validate: bool, epoch_steps: int, progress: bool
             ) -> tuple[L.Trainer, ModelCheckpoint | None]:
    """The Lightning trainer of a run, and its best-checkpoint callback (``--keep best``)."""
    ckpt_dir = last.parent
    checkpoint = RunCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                               every_n_train_steps=cfg.checkpoint_every,
                               enable_version_counter=False)
    # early stopping without stopping: the weights of the lowest validation loss so far, kept in
    # checkpoints/best.ckpt (its state_dict is the moving average when that is on)
    best = RunCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min",
                         save_top_k=1, enable_version_counter=False,
                         auto_insert_metric_name=False) if cfg.keep == "best" else None
    stopping = [EarlyStopping("val_loss", patience=cfg.patience, mode="min",
                              check_on_train_epoch_end=False)] if cfg.patience else []
    # validation and the model file use the moving average of the weights (checkpoints hold
    # both, so a resumed run continues the average)
    averaging = [WeightAveraging(avg_fn=ema_average(cfg.ema))] if cfg.ema else []
    _quiet_lightning()
    trainer = L.Trainer(
        max_steps=cfg.steps,
        max_time=None if cfg.max_minutes is None else timedelta(minutes=cfg.max_minutes),
        accelerator=cfg.accelerator, devices=cfg.devices,
        precision=cfg.precision, gradient_clip_val=cfg.grad_clip,
        callbacks=[checkpoint, *([best] if best else []), *stopping, recorder, *averaging,
                   *([StepProgressBar()] if progress else [])],
        plugins=[AtomicCheckpointIO({str(last): resumed} if resumed else None)],
        # a new logs/version_N per (re)start, so a resumed run keeps its history
        logger=L.pytorch.loggers.CSVLogger(run_dir, name="logs"),
        # steps counted across epochs: tiny datasets have epochs of a few steps
        val_check_interval=cfg.val_every if validate else None,
        check_val_every_n_epoch=None if validate else 1,
        limit_val_batches=None if validate else 0, num_sanity_val_steps=0,
        enable_progress_bar=progress, enable_model_summary=False,
        log_every_n_steps=max(1, min(10, epoch_steps)),
        default_root_dir=run_dir,
    )
    return trainer, best


def _quiet_lightning() -> None:
    """Drop lines Lightning prints on every run that tell a user nothing about theirs: an
    advertisement for a cloud logger, the accelerators the machine lacks ("TPU available:
    False ..."; one it has but the run leaves unused is still reported), the notes of a
    ``--resume`` (what it restores, from a folder that of course is not empty: a refused
    checkpoint is then the only line) and a deprecation inside Lightning itself (torch 2.13)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_worth_printing)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def _worth_printing(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(noise in message for noise in
                   ("litlogger", " available: False", "Restoring states from the checkpoint",
                    "Found current_model_state in the checkpoint"))


def _initial_model(name: str) -> Model:

    model = load(name)
    if model.is_quantized:
        raise UserError(f"--init {name} is an int8 model; start from its float version")
    return model


def _teacher_clips(cfg: TrainConfig, clips: list[Clip], sample_rate: int, frame_rate: float
                   ) -> list[Clip]:
    """The teacher's renderings of varied controls of ``clips`` (``data.teacher_clips``), the
    same for the same seed, so a resumed run trains on the same clips."""

    assert cfg.teacher is not None
    teacher = load(cfg.teacher)
    if (teacher.sample_rate, teacher.frame_rate) != (sample_rate, frame_rate):
        raise UserError(f"--teacher {cfg.teacher} runs at {teacher.sample_rate} Hz, "
                        f"{teacher.frame_rate:g} frames/s; the data at {sample_rate} Hz, "
                        f"{frame_rate:g} frames/s")
    return teacher_clips(clips, teacher.synthesize, cfg.teacher_variants, sample_rate,
                         frame_rate, seed=cfg.seed)


def _check_resumable(run_dir: Path, cfg: TrainConfig) -> None:
    """A resumed run must build the same network as its checkpoint: same preset, room and
    synth."""
    started = run_dir / "train_config.json"
    if not started.is_file():
        return
    before = json.loads(started.read_text())
    before.setdefault("reverb", "free")  # runs from before --reverb had a free IR
    for key in ("preset", "reverb", "max_harmonic_hz", "noise_floor"):
        if before.get(key) != getattr(cfg, key):
            option = "--" + key.replace("_", "-")
            value = before.get(key)
            given = (option if value else f"--no-{option[2:]}") if isinstance(value, bool) \
                else f"no {option}" if value is None else f"{option} {value}"
            raise UserError(f"{run_dir} was started with {given}; resume it the same way")


def read_losses(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{"train_loss": [(step, value), ...], "val_loss": [...]}`` from a run's CSV logs (all
    of its segments, in step order)."""
    out: dict[str, list[tuple[int, float]]] = {"train_loss": [], "val_loss": []}
    for path in sorted((Path(run_dir) / "logs").glob("version_*/metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                for key in out:
                    if row.get(key):
                        out[key].append((int(row["step"]), float(row[key])))
    return {k: sorted(v) for k, v in out.items()}

