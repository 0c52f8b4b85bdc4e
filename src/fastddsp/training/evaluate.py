"""`fastddsp eval`: resynthesize clips from their own f0 and loudness and score them, or score a
folder of existing outputs (e.g. the thesis' audio) against their references, the same way.

Per clip, with both signals normalised to -20 LUFS (ITU-R BS.1770, pyloudnorm):
- spectral distance: the multi-scale spectral distance of ``dsp.spectral`` (FFT 2048..64);
- loudness L1: mean |dB difference| of DDSP loudness over frames where the reference is above
  the -80 dB floor;
- f0 L1: mean |semitone difference| on frames where the reference is confidently voiced, both
  tracked by the same tracker; outlier ratio: share of those frames off by more than 1 semitone.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyloudnorm
import torch

from ..atomic import write_text_atomic
from ..dsp.core import SILENCE_DB
from ..dsp.spectral import multiscale_spectral_distance
from ..errors import UserError
from ..features import extract_features
from ..features.loudness import loudness_db
from ..features.pitch import PITCH_RATE, get_tracker
from ..io import read_audio, refuse_overwrite, resample, write_audio
from ..models.model import Model
from .data import AUDIO_SUFFIXES, MANIFEST, Clip, find_audio, load_clips

TARGET_LUFS = -20.0


@dataclass
class ClipScore:
    name: str
    spectral_distance: float
    loudness_l1_db: float
    f0_l1_semitones: float
    outlier_ratio: float
    voiced_frames: int


@dataclass
class EvalReport:
    label: str
    clips: list[ClipScore]
    # where the audio came from, for `fastddsp report`: "references" (the SOURCE or REFERENCES
    # path), "split" (model mode), "outputs" and "tag" (outputs mode); absolute paths
    origin: dict[str, str] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        keys = ("spectral_distance", "loudness_l1_db", "f0_l1_semitones", "outlier_ratio")
        out = {}
        for k in keys:
            vals = [getattr(c, k) for c in self.clips if not math.isnan(getattr(c, k))]
            out[k] = float(np.mean(vals)) if vals else float("nan")
        return out

    def to_json(self) -> str:
        return json.dumps({"label": self.label, "mean": self.mean(),
                           "clips": [asdict(c) for c in self.clips], **self.origin}, indent=1)


def normalise_lufs(audio: np.ndarray, sample_rate: int, target: float = TARGET_LUFS
                   ) -> np.ndarray:
    meter = pyloudnorm.Meter(sample_rate)
    if audio.size < int(0.4 * sample_rate) + 1:
        raise UserError("clips shorter than 0.4 s cannot be measured in LUFS")
    lufs = meter.integrated_loudness(audio.astype(np.float64))
    if not np.isfinite(lufs):
        return audio.astype(np.float32)
    return (audio * 10 ** ((target - lufs) / 20)).astype(np.float32)


def score_pair(output: np.ndarray, reference: np.ndarray, sample_rate: int, name: str = "",
               pitch: str = "crepe-tiny", frame_rate: float = 100.0) -> ClipScore:
    n = min(output.size, reference.size)
    out = normalise_lufs(output[:n], sample_rate)
    ref = normalise_lufs(reference[:n], sample_rate)
    dist = multiscale_spectral_distance(torch.from_numpy(out)[None],
                                        torch.from_numpy(ref)[None]).item()
    tracker = get_tracker(pitch)
    # the reference's loudness and pitch come from the feature cache (computed once however
    # often it is scored; on its voiced frames the cached f0 is the raw estimate); the output
    # is new audio, so it is measured directly
    f_ref = extract_features(ref, sample_rate, pitch, frame_rate, loudness_rate=sample_rate)
    ld_ref = f_ref.loudness_db
    ld_out = loudness_db(out, sample_rate, frame_rate)[: ld_ref.size]
    audible = ld_ref > SILENCE_DB
    ld_l1 = float(np.abs(ld_out - ld_ref)[audible].mean()) if audible.any() else float("nan")
    centres = np.round(np.arange(ld_ref.size) * PITCH_RATE / frame_rate).astype(np.int64)
    f0_out, _ = tracker.run(resample(out, sample_rate, PITCH_RATE), centres)
    voiced = (f_ref.confidence >= tracker.voicing_threshold) & audible
    f0_ref = f_ref.f0_hz
    if voiced.any():
        d = np.abs(12 * np.log2(np.maximum(f0_out[voiced], 1e-3) / f0_ref[voiced]))
        f0_l1, outliers = float(d.mean()), float((d > 1.0).mean())
    else:
        f0_l1 = outliers = float("nan")
    return ClipScore(name, dist, ld_l1, f0_l1, outliers, int(voiced.sum()))


def _sources(source: Path, model: Model | None, split: str, pitch: str) -> list[Clip]:
    """Reference clips with features: a prepared data folder's clips, or audio files."""
    if (source / MANIFEST).is_file():
        clips, manifest = load_clips(source, None if split == "all" else split)
        if model is not None and manifest["settings"]["sample_rate"] != model.sample_rate:
            raise UserError(f"{source} was prepared at {manifest['settings']['sample_rate']} Hz "
                            f"but the model runs at {model.sample_rate} Hz")
        if not clips:
            raise UserError(f"{source} has no '{split}' files (use --split all)")
        return clips
    if source.is_dir():
        files = find_audio(source)
        if not files:
            raise UserError(f"no audio files under {source}")
    elif source.is_file():
        if source.suffix.lower() not in AUDIO_SUFFIXES:
            raise UserError(f"{source} is not an audio file or a prepared data folder")
        files = [source]
    else:
        raise UserError(f"{source} does not exist")
    sr = model.sample_rate if model is not None else None
    frame_rate = model.frame_rate if model is not None else 250.0
    clips = []
    for f in files:
        audio, rate = read_audio(f, sr)
        feats = extract_features(audio, rate, pitch=pitch, frame_rate=frame_rate,
                                 loudness_rate=rate)
        clips.append(Clip(f.stem if source.is_dir() else f.name, audio, feats.f0_hz,
                          feats.confidence, feats.loudness_db))
    return clips


def _what_is_scored(source: Path, split: str, n: int, features_pitch: str) -> str:
    """One line naming the clips scored: which split of a data folder, or which audio."""
    if (source / MANIFEST).is_file():
        part = {"val": "validation", "train": "training", "all": "every"}[split]
        return f"the {part} split of the data folder {source} ({n} file{'s' if n != 1 else ''})"
    return (f"{'all ' if n > 1 else ''}{n} audio file{'s' if n > 1 else ''} of {source} "
            f"(features by {features_pitch})")


def _refuse_overwriting_sources(source: Path, out_dir: Path) -> None:
    """The resynthesized ``<stem>.wav`` files never replace the source clips they score."""
    if (source / MANIFEST).is_file():
        return
    files = find_audio(source) if source.is_dir() else [source] if source.is_file() else []
    for f in files:
        refuse_overwrite(out_dir / f"{f.stem}.wav", f)


def evaluate_model(model: Model, source: str | Path, out_dir: str | Path | None = None,
                   split: str = "val", features_pitch: str = "crepe-full",
                   score_pitch: str = "crepe-tiny", label: str = "model") -> EvalReport:
    if out_dir is not None:
        _refuse_overwriting_sources(Path(source), Path(out_dir))
    clips = _sources(Path(source), model, split, features_pitch)
    scores = []
    for clip in clips:
        audio = model.synthesize(clip.f0_hz, clip.loudness_db)
        stem = Path(clip.name).stem
        if out_dir is not None:
            write_audio(Path(out_dir) / f"{stem}.wav", audio, model.sample_rate)
        scores.append(score_pair(audio, clip.audio, model.sample_rate, stem, score_pitch))
    report = EvalReport(label, scores, {"references": str(Path(source).resolve()),
                                        "split": split,
                                        "scored": _what_is_scored(Path(source), split,
                                                                  len(clips), features_pitch)})
    if out_dir is not None:
        write_text_atomic(Path(out_dir) / "scores.json", report.to_json())
    return report


def evaluate_outputs(outputs: str | Path, references: str | Path, tag: str | None = None,
                     score_pitch: str = "crepe-tiny", out_dir: str | Path | None = None
                     ) -> EvalReport:
    """Score ``OUTPUTS/<stem>.<tag>.wav`` (or ``<stem>.wav`` without a tag) against each
    reference ``<stem>.wav``."""
    outputs, references = Path(outputs), Path(references)
    refs = [references] if references.is_file() else find_audio(references)
    if not refs:
        raise UserError(f"no reference audio under {references}")
    scores = []
    for ref in refs:
        cand = outputs / (f"{ref.stem}.{tag}{ref.suffix}" if tag else ref.name)
        if not cand.is_file():
            raise UserError(f"no output {cand.name} in {outputs} for reference {ref.name}")
        ref_audio, sr = read_audio(ref)
        out_audio, _ = read_audio(cand, sr)
        scores.append(score_pair(out_audio, ref_audio, sr, ref.stem, score_pitch))
    origin = {"references": str(references.resolve()), "outputs": str(outputs.resolve())}
    report = EvalReport(tag or outputs.name, scores, {**origin, **({"tag": tag} if tag else {})})
    if out_dir is not None:
        write_text_atomic(Path(out_dir) / "scores.json", report.to_json())
    return report
