"""Datasets: `prepare` (audio folder -> clips with features, split, statistics) and the torch
``Dataset`` that training and evaluation read.

A data folder holds ``manifest.json`` (settings, files, split, statistics) and ``clips/*.npz``
(audio at the model rate with its f0, confidence and loudness at the frame rate). Examples are
windows of ``example_seconds`` every ``hop_seconds`` over each clip. Re-running prepare reuses
every clip whose file content and settings are unchanged. A prepare holds the folder's lock
(``.prepare.lock``) until it is done: a second prepare into the same folder is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path, write_text_atomic
from ..dsp.core import SILENCE_DB
from ..errors import UserError
from ..features import extract_features
from ..features.extract import lower_pitch_rate
from ..features.loudness import loudness_db, shifted_loudness
from ..features.pitch import get_tracker
from ..io import RESAMPLE_PASSBAND, file_sha256, read_audio, resample

try:
    import fcntl
except ImportError:  # Windows: no flock; a prepare there is not guarded
    fcntl = None  # type: ignore[assignment]

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus",
                  ".w64", ".caf"}
MANIFEST = "manifest.json"
PREPARE_LOCK = ".prepare.lock"  # in the data folder: who is writing it (a pid), flock-ed
FORMAT_VERSION = 1


@dataclass
class PrepareSummary:
    data_dir: Path
    processed: int = 0
    reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    train_examples: int = 0
    val_examples: int = 0
    train_seconds: float = 0.0
    val_seconds: float = 0.0


def find_audio(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in
                  AUDIO_SUFFIXES and not p.name.startswith("."))


def _split_score(rel: str) -> float:
    return int(hashlib.sha256(rel.encode()).hexdigest()[:8], 16) / 2 ** 32


def choose_split(names: list[str], val_fraction: float, val_names: Iterable[str] = ()
                 ) -> dict[str, str]:
    """``name -> "train" | "val"``. Named files go to validation; otherwise each file's hash
    decides, so the split is stable as files are added; with two or more files at least one is
    held out (unless ``val_fraction`` is 0)."""
    chosen = set(val_names)
    if chosen:
        unknown = chosen - set(names)
        if unknown:
            raise UserError("--val file(s) not found among the audio: "
                            f"{', '.join(sorted(unknown))}")
        return {n: "val" if n in chosen else "train" for n in names}
    split = {n: "val" if _split_score(n) < val_fraction else "train" for n in names}
    if val_fraction > 0 and len(names) >= 2 and "val" not in split.values():
        split[min(names, key=_split_score)] = "val"
    if len(names) >= 2 and "train" not in split.values():
        split[max(names, key=_split_score)] = "train"
    return split


def example_offsets(n_frames: int, example_frames: int, hop_frames: int) -> list[int]:
    if n_frames <= example_frames:
        return [0]
    return list(range(0, n_frames - example_frames + 1, hop_frames))


def compute_stats(clips: list[dict[str, np.ndarray]], threshold: float) -> dict[str, Any]:
    """Pitch and loudness distributions of confidently voiced frames: what timbre transfer maps
    an input onto."""
    if not clips:
        return {}
    f0 = np.concatenate([c["f0_hz"] for c in clips])
    ld = np.concatenate([c["loudness_db"] for c in clips])
    conf = np.concatenate([c["confidence"] for c in clips])
    voiced = (conf >= threshold) & (ld > SILENCE_DB)
    if not voiced.any():
        voiced = ld > SILENCE_DB
    if not voiced.any():
        return {}
    midi = 12 * np.log2(np.maximum(f0[voiced], 1e-3) / 440.0) + 69
    q = np.linspace(0, 100, 101)
    return {
        "voiced_frames": int(voiced.sum()),
        "frames": int(f0.size),
        "pitch_midi": {"mean": float(midi.mean()), "std": float(midi.std()),
                       "quantiles": np.percentile(midi, q).round(4).tolist()},
        "loudness_db": {"mean": float(ld[voiced].mean()),
                        "quantiles": np.percentile(ld[voiced], q).round(4).tolist()},
    }


def prepare_dataset(audio_dir: str | Path, data_dir: str | Path, sample_rate: int = 16000,
                    frame_rate: float = 250.0, pitch: str = "crepe-full",
                    example_seconds: float = 4.0, hop_seconds: float = 1.0,
                    val_fraction: float = 0.1, val_names: Iterable[str] = (),
                    progress: Callable[[Iterable[Path]], Iterable[Path]] | None = None,
                    attribution: str | None = None, pitch_rate: float | None = None
                    ) -> PrepareSummary:
    """Audio files under ``audio_dir`` -> a data folder (see the module docs). ``attribution``
    (default: the text of ``ATTRIBUTION.txt`` in ``audio_dir``, if any) is the credit the
    recordings' licence asks for: models trained on the folder carry it. ``pitch_rate``
    tracks pitch at fewer frames/s than ``frame_rate`` and interpolates it
    (``extract_features``)."""
    audio_dir, data_dir = Path(audio_dir), Path(data_dir)
    if not 0 <= val_fraction < 1:
        raise UserError("--val-fraction must be within [0, 1)")
    if example_seconds <= 0 or hop_seconds <= 0:
        raise UserError("--example-seconds and --hop-seconds must be positive")
    if not audio_dir.is_dir():
        raise UserError(f"{audio_dir} is not a folder")
    files = find_audio(audio_dir)
    if not files:
        raise UserError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {audio_dir}")
    hop = sample_rate / frame_rate
    if abs(hop - round(hop)) > 1e-9:
        raise UserError(f"sample rate {sample_rate} is not a whole number of frames at "
                        f"{frame_rate:g} frames/s")
    tracker = get_tracker(pitch)
    settings = {"format": FORMAT_VERSION, "sample_rate": sample_rate, "frame_rate": frame_rate,
                "pitch": pitch, "example_seconds": example_seconds, "hop_seconds": hop_seconds}
    pitch_rate = lower_pitch_rate(pitch_rate, frame_rate)  # checked once, not per file
    if pitch_rate is not None:
        settings["pitch_rate"] = pitch_rate
    if attribution is None:
        attribution = read_attribution(audio_dir)
    with _prepare_lock(data_dir):
        return _write_dataset(audio_dir, data_dir, files, settings, tracker.voicing_threshold,
                              val_fraction, val_names, progress, attribution.strip())


ATTRIBUTION_FILE = "ATTRIBUTION.txt"


def read_attribution(audio_dir: Path) -> str:
    """The text of ``audio_dir``'s ``ATTRIBUTION.txt`` as one line ("" without one)."""
    path = audio_dir / ATTRIBUTION_FILE
    try:
        return " ".join(path.read_text(encoding="utf-8").split()) if path.is_file() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}") from None


@contextlib.contextmanager
def _prepare_lock(data_dir: Path) -> Iterator[None]:
    """Holds ``data_dir``'s prepare lock: an exclusive, non-blocking ``flock`` of its
    ``.prepare.lock``, which then records this process's pid. Held by another prepare: a
    ``UserError`` naming it. The file stays (it is hidden, and no reader looks at it): removed,
    a third prepare could lock a new file while a second still holds the old one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(data_dir / PREPARE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise UserError(f"{data_dir} is being written by another prepare{pid}; wait for it "
                            f"or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_dataset(audio_dir: Path, data_dir: Path, files: list[Path], settings: dict[str, Any],
                   voicing_threshold: float, val_fraction: float, val_names: Iterable[str],
                   progress: Callable[[Iterable[Path]], Iterable[Path]] | None,
                   attribution: str = "") -> PrepareSummary:
    """``prepare_dataset``'s work, once its arguments are checked and the folder is locked."""
    sample_rate, frame_rate, pitch = (settings[k] for k in ("sample_rate", "frame_rate", "pitch"))
    example_seconds, hop_seconds = settings["example_seconds"], settings["hop_seconds"]
    hop = sample_rate / frame_rate
    clips_dir = data_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = data_dir / MANIFEST
    old = _previous_entries(manifest_path, settings)
    summary = PrepareSummary(data_dir)
    entries: list[dict[str, Any]] = []
    for path in (progress(files) if progress else files):
        rel = path.relative_to(audio_dir).as_posix()
        try:
            sha = file_sha256(path)
            clip_name = f"{sha[:24]}.npz"
            if sha in old and (clips_dir / clip_name).is_file():
                entries.append({**old[sha], "path": rel})
                summary.reused += 1
                continue
            if (n_done := _finished_clip(clips_dir / clip_name, settings)) is not None:
                entries.append({"path": rel, "sha256": sha, "clip": clip_name, "frames": n_done,
                                "seconds": n_done / frame_rate})
                summary.reused += 1
                continue
            audio, _ = read_audio(path, sample_rate)
            feats = extract_features(audio, sample_rate, pitch=pitch, frame_rate=frame_rate,
                                     loudness_rate=sample_rate,
                                     pitch_rate=settings.get("pitch_rate"))
        except (UserError, OSError) as e:
            warnings.warn(f"skipping {rel}: {e}", stacklevel=3)  # prepare_dataset's caller
            summary.skipped.append((rel, str(e)))
            continue
        n = feats.n_frames
        audio = np.pad(audio, (0, max(0, n * int(hop) - audio.size)))[: n * int(hop)]
        with atomic_path(clips_dir / clip_name, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, audio=audio.astype(np.float32), f0_hz=feats.f0_hz,
                     confidence=feats.confidence, loudness_db=feats.loudness_db,
                     settings=np.array(json.dumps(settings, sort_keys=True)))
        entries.append({"path": rel, "sha256": sha, "clip": clip_name, "frames": n,
                        "seconds": n / frame_rate})
        summary.processed += 1
    if not entries:
        raise UserError(f"none of the {len(files)} audio files under {audio_dir} could be read")

    split = choose_split([e["path"] for e in entries], val_fraction, val_names)
    ex_frames = round(example_seconds * frame_rate)
    hop_frames = max(1, round(hop_seconds * frame_rate))
    train_clips = []
    for e in entries:
        e["split"] = split[e["path"]]
        e["examples"] = len(example_offsets(e["frames"], ex_frames, hop_frames))
        if e["split"] == "train":
            summary.train_examples += e["examples"]
            summary.train_seconds += e["seconds"]
            with np.load(clips_dir / e["clip"]) as z:
                train_clips.append({k: z[k] for k in ("f0_hz", "confidence", "loudness_db")})
        else:
            summary.val_examples += e["examples"]
            summary.val_seconds += e["seconds"]
    stats = compute_stats(train_clips, voicing_threshold)
    stats.update({"train_seconds": round(summary.train_seconds, 3), "pitch_tracker": pitch})
    manifest = {"settings": settings, "files": entries, "stats": stats,
                "skipped": [{"path": p, "reason": r} for p, r in summary.skipped],
                **({"attribution": attribution} if attribution else {})}
    write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
    keep = {e["clip"] for e in entries}
    for stale in clips_dir.glob("*.npz"):
        if stale.name not in keep:
            stale.unlink()
    return summary


def _previous_entries(manifest_path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """sha256 -> file entry of the folder's manifest, when it was made with ``settings``."""
    try:
        prev = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}
    if prev.get("settings") != settings:
        return {}
    return {f["sha256"]: f for f in prev.get("files", [])}


def _finished_clip(path: Path, settings: dict[str, Any]) -> int | None:
    """Frames of a clip an earlier, interrupted prepare finished with the same ``settings``
    (each clip file records them), so that a long CREPE run resumes where it stopped; ``None``
    when there is no such clip."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            if "settings" not in z.files or json.loads(str(z["settings"])) != settings:
                return None
            return int(z["f0_hz"].size)
    except (OSError, ValueError, json.JSONDecodeError):
        return None


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{data_dir} is not a prepared data folder (no {MANIFEST}); "
                        f"run `fastddsp prepare` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is damaged: {e}") from None


@dataclass
class Clip:
    name: str
    audio: np.ndarray
    f0_hz: np.ndarray
    confidence: np.ndarray
    loudness_db: np.ndarray
    # the highest frequency the audio really has (resampling empties the band above): what the
    # training loss compares; inf = up to Nyquist
    bandwidth_hz: float = float("inf")


def load_clips(data_dir: str | Path, split: str | None) -> tuple[list[Clip], dict[str, Any]]:
    manifest = read_manifest(data_dir)
    clips = []
    for e in manifest["files"]:
        if split is not None and e["split"] != split:
            continue
        with np.load(Path(data_dir) / "clips" / e["clip"]) as z:
            clips.append(Clip(e["path"], z["audio"], z["f0_hz"], z["confidence"],
                              z["loudness_db"]))
    return clips, manifest


def pitch_shifted(clip: Clip, semitones: float, sample_rate: int, frame_rate: float) -> Clip:
    """The clip played ``semitones`` higher (and correspondingly shorter), as a tape would;
    loudness is measured again on the shifted audio. Its ``bandwidth_hz`` is what the
    resampler keeps: a shift down leaves the top of the band empty (one semitone: the top
    0.9 kHz at 16 kHz), a shift up loses the resampler's transition band."""
    if semitones == 0:
        return clip
    ratio = 2 ** (semitones / 12)
    hop = round(sample_rate / frame_rate)
    audio = resample(clip.audio, round(sample_rate * ratio), sample_rate)
    n = audio.size // hop
    audio = audio[: n * hop]
    src_t = np.arange(clip.f0_hz.size) / frame_rate / ratio
    dst_t = np.arange(n) / frame_rate
    f0 = np.interp(dst_t, src_t, clip.f0_hz * ratio).astype(np.float32)
    conf = np.interp(dst_t, src_t, clip.confidence).astype(np.float32)
    ld = loudness_db(audio, sample_rate, frame_rate)[:n]
    bandwidth = min(clip.bandwidth_hz * ratio,
                    RESAMPLE_PASSBAND * min(sample_rate, sample_rate * ratio) / 2)
    return Clip(f"{clip.name}@{semitones:+g}", audio, f0, conf, ld, bandwidth)


# teacher variants (``teacher_clips``): how far each variant's controls move from its clip's
TEACHER_SHIFT = (-5.5, 2.5)  # semitones, uniform
TEACHER_TEMPO = (0.7, 1.5)  # duration factor, uniform
TEACHER_GAIN_DB = 6.0  # uniform, either way
TEACHER_REST_DB = -35.0  # frames below this loudness are rest
TEACHER_REST_SECONDS = (0.8, 2.0)  # the stretched rest's length, uniform, in half the variants


def varied_controls(clip: Clip, frame_rate: float, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New controls ``(f0_hz, confidence, loudness_db)`` after ``clip``'s: a random pitch shift,
    tempo and gain, and in half of the draws the clip's longest rest stretched to a random
    0.8-2 s (short recordings hold only short rests). Pitch moves without a tape's change of
    duration, so the two are independent."""
    n = clip.f0_hz.size
    shift = rng.uniform(*TEACHER_SHIFT)
    tempo = rng.uniform(*TEACHER_TEMPO)
    gain = rng.uniform(-TEACHER_GAIN_DB, TEACHER_GAIN_DB)
    stretch_rest = rng.random() < 0.5
    rest_frames = round(rng.uniform(*TEACHER_REST_SECONDS) * frame_rate)
    frames = np.arange(n, dtype=np.float64)  # source frame of each output frame
    start, length = _longest_run(clip.loudness_db < TEACHER_REST_DB)
    if stretch_rest and rest_frames > length > 0:
        frames = np.concatenate([frames[:start],
                                 np.linspace(start, start + length - 1, rest_frames),
                                 frames[start + length:]])
    m = max(1, round(frames.size * tempo))
    frames = np.interp(np.linspace(0, frames.size - 1, m), np.arange(frames.size), frames)
    src = np.arange(n)
    f0 = np.exp(np.interp(frames, src, np.log(np.maximum(clip.f0_hz, 1e-3))))
    f0 = f0 * 2.0 ** (shift / 12.0)
    conf = np.interp(frames, src, clip.confidence)
    ld = shifted_loudness(np.interp(frames, src, clip.loudness_db), gain)
    return f0.astype(np.float32), conf.astype(np.float32), ld.astype(np.float32)


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """``(start, length)`` of the longest run of True in ``mask``; ``(0, 0)`` if none."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if starts.size == 0:
        return 0, 0
    i = int(np.argmax(ends - starts))
    return int(starts[i]), int(ends[i] - starts[i])


def teacher_clips(clips: list[Clip], synthesize: Callable[[np.ndarray, np.ndarray, int],
                                                          np.ndarray],
                  variants: int, sample_rate: int, frame_rate: float, seed: int = 0
                  ) -> list[Clip]:
    """``variants`` new clips per clip, played by a teacher: ``synthesize(f0_hz, loudness_db,
    noise_seed)`` (a trained model) renders the controls of ``varied_controls``, and loudness
    is measured again on what it played. Training on them beside the recordings shows a network
    notes, tempi and rests the recordings lack, as a model that generalizes better from them
    (the teacher) would play them."""
    rng = np.random.default_rng(seed)
    hop = round(sample_rate / frame_rate)
    out = []
    for clip in clips:
        for v in range(variants):
            f0, conf, ld = varied_controls(clip, frame_rate, rng)
            audio = synthesize(f0, ld, int(rng.integers(1 << 31)))[: f0.size * hop]
            audio = np.pad(audio, (0, f0.size * hop - audio.size)).astype(np.float32)
            out.append(Clip(f"{clip.name}~teacher{v}", audio, f0, conf,
                            loudness_db(audio, sample_rate, frame_rate)[: f0.size]))
    return out


class ExampleDataset(torch.utils.data.Dataset):
    """Windows over clips. For training, ``crop_frames`` picks a random crop inside each
    example, ``gain_db`` a random gain (loudness shifted to match) and ``pitch_shifts`` adds
    tape-shifted copies of every clip. ``unvoiced_shift`` moves the f0 of the example's unvoiced
    frames (confidence under ``voicing_threshold``: rests and noise, where the features hold the
    last note's f0) by a random number of semitones up to that size, one draw per example, so
    that the decoder learns rests that do not depend on the note before them."""

    def __init__(self, clips: list[Clip], sample_rate: int, frame_rate: float,
                 example_seconds: float = 4.0, hop_seconds: float = 1.0,
                 crop_frames: int | None = None, gain_db: float = 0.0,
                 pitch_shifts: tuple[float, ...] = (0.0,), unvoiced_shift: float = 0.0,
                 voicing_threshold: float = 0.5, seed: int = 0):
        self.hop = round(sample_rate / frame_rate)
        self.clips = [pitch_shifted(c, s, sample_rate, frame_rate)
                      for c in clips for s in pitch_shifts]
        self.example_frames = round(example_seconds * frame_rate)
        self.crop_frames = crop_frames
        self.gain_db = gain_db
        self.unvoiced_shift = unvoiced_shift
        self.voicing_threshold = voicing_threshold
        self.rng = np.random.default_rng(seed)
        hop_frames = max(1, round(hop_seconds * frame_rate))
        self.index = [(i, o) for i, c in enumerate(self.clips)
                      for o in example_offsets(c.f0_hz.size, self.example_frames, hop_frames)]
        if not self.index:
            raise UserError("the dataset has no examples")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ci, start = self.index[i]
        clip = self.clips[ci]
        length = self.example_frames
        if self.crop_frames is not None and self.crop_frames < length:
            avail = min(length, clip.f0_hz.size - start) - self.crop_frames
            start += int(self.rng.integers(0, max(avail, 0) + 1))
            length = self.crop_frames
        f0 = clip.f0_hz[start: start + length]
        ld = clip.loudness_db[start: start + length]
        if self.unvoiced_shift:
            s = float(self.rng.uniform(-self.unvoiced_shift, self.unvoiced_shift))
            unvoiced = clip.confidence[start: start + length] < self.voicing_threshold
            f0 = np.where(unvoiced, f0 * 2.0 ** (s / 12.0), f0)
        audio = clip.audio[start * self.hop: (start + length) * self.hop]
        pad = length - f0.size
        if pad > 0:  # a clip shorter than one example: pad with silence, pitch held
            f0 = np.pad(f0, (0, pad), mode="edge")
            ld = np.pad(ld, (0, pad), constant_values=SILENCE_DB)
            audio = np.pad(audio, (0, length * self.hop - audio.size))
        if self.gain_db:
            g = float(self.rng.uniform(-self.gain_db, self.gain_db))
            audio = audio * 10 ** (g / 20)
            ld = shifted_loudness(ld, g)
        return {"f0_hz": torch.from_numpy(np.ascontiguousarray(f0, dtype=np.float32)),
                "loudness_db": torch.from_numpy(np.ascontiguousarray(ld, dtype=np.float32)),
                "audio": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
                "max_hz": torch.tensor(clip.bandwidth_hz, dtype=torch.float32)}
