"""Timbre transfer: any recording -> the same melody played by a model's instrument.

features (pitch + loudness) -> adjust to the model's training data -> chunked synthesis.

Adjustments (as DDSP's timbre-transfer demo does):
- octave ``"auto"``: whole octaves that bring the input's mean voiced pitch closest to the
  training set's mean pitch; or a given number of octaves; plus ``pitch_shift`` semitones.
- loudness ``"auto"``: quantile mapping of the input's voiced-frame loudness distribution onto
  the training set's that may compress the input's dynamics but never expands them (each step
  between quantiles is the smaller of the two), centred on the training median: a steady tone
  stays steady, at the training set's median loudness; ``"none"``: unchanged; a number: that
  many dB added.
- unvoiced frames (confidence under the tracker's threshold) are lowered by ``quiet_db`` so
  breaths, consonants and room noise stay quiet; silence stays at the -80 dB floor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dsp.core import SILENCE_DB
from .errors import UserError
from .features import extract_features
from .features.frames import Features
from .features.loudness import shifted_loudness
from .features.pitch import get_tracker
from .io import output_format, refuse_overwrite, resample
from .models.chunked import render_chunks
from .models.model import Model
from .models.registry import load

DEFAULT_MODEL = "violin-tiny"


@dataclass
class Adjustment:
    octaves: int
    semitones: float
    loudness_mode: str
    voiced_share: float


def _midi(f0: np.ndarray) -> np.ndarray:
    return 12 * np.log2(np.maximum(f0, 1e-3) / 440.0) + 69


def parse_octave(value: str | int) -> str | int:
    """``"auto"`` or a whole number of octaves (as text or int)."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--octave must be 'auto' or an integer, not {value!r}") from None


def parse_loudness(value: str | float) -> str | float:
    """``"auto"``, ``"none"`` or a number of dB (as text or number)."""
    if value in ("auto", "none"):
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--loudness must be auto, none or a number of dB, not {value!r}"
                        ) from None


def adjust_features(feats: Features, stats: dict[str, Any], octave: str | int = "auto",
                    pitch_shift: float = 0.0, loudness: str | float = "auto",
                    voicing_threshold: float = 0.5, quiet_db: float = 20.0
                    ) -> tuple[Features, Adjustment]:
    f0 = feats.f0_hz.astype(np.float64)
    ld = feats.loudness_db.astype(np.float64)
    voiced = (feats.confidence >= voicing_threshold) & (ld > SILENCE_DB)
    if not voiced.any():
        raise UserError("the input has no confidently pitched sound to transfer (silence or "
                        "noise?)")
    octave, loudness = parse_octave(octave), parse_loudness(loudness)
    pitch_stats = stats.get("pitch_midi") or {}
    if octave == "auto":
        if "mean" not in pitch_stats:
            raise UserError("the model has no training statistics: give --octave N")
        gap = pitch_stats["mean"] - _midi(f0[voiced]).mean()
        octaves = int(np.round(gap / 12))
    else:
        octaves = int(octave)
    f0 = f0 * 2.0 ** (octaves + pitch_shift / 12)

    mode = str(loudness)
    if loudness == "auto":
        q = (stats.get("loudness_db") or {}).get("quantiles")
        if not q:
            raise UserError("the model has no training statistics: use --loudness none or DB")
        target = np.asarray(q, np.float64)
        src_q = np.percentile(ld[voiced], np.linspace(0, 100, len(q)))
        src_q = np.maximum.accumulate(src_q + np.arange(len(q)) * 1e-9)  # strictly increasing
        # a plain quantile map spreads a near-constant input over the whole training range
        # (frame-to-frame jitter of 0.001 dB became 20 dB): steps never wider than the input's
        knots = np.concatenate([[0.0], np.cumsum(np.minimum(np.diff(target), np.diff(src_q)))])
        mid = len(q) // 2
        mapped = np.interp(ld, src_q, knots + (target[mid] - knots[mid]))
        ld = np.where(ld > SILENCE_DB, mapped, SILENCE_DB)
    elif loudness == "none":
        pass
    else:
        ld = shifted_loudness(ld, float(loudness))
        mode = f"{float(loudness):+g} dB"
    ld = np.where(voiced | (ld <= SILENCE_DB), ld, ld - quiet_db)
    ld = np.maximum(ld, SILENCE_DB)
    out = Features(f0.astype(np.float32), ld.astype(np.float32), feats.confidence,
                   feats.frame_rate)
    return out, Adjustment(octaves, pitch_shift, mode, float(voiced.mean()))


def _model(model: str | Model) -> Model:
    return model if isinstance(model, Model) else load(model)


def transfer_features(feats: Features, model: str | Model = DEFAULT_MODEL,
                      octave: str | int = "auto", pitch_shift: float = 0.0,
                      loudness: str | float = "auto", pitch: str = "crepe-tiny",
                      seed: int = 0, chunk_frames: int = 2500
                      ) -> tuple[Iterator[np.ndarray], Adjustment, Features]:
    """Features -> (an iterator of audio chunks at the model's rate, the adjustment made,
    the adjusted features)."""
    m = _model(model)
    feats = feats.resample(m.frame_rate)
    adj_feats, adj = adjust_features(feats, m.stats, octave, pitch_shift, loudness,
                                     get_tracker(pitch).voicing_threshold)
    chunks = render_chunks(m, adj_feats.f0_hz, adj_feats.loudness_db, chunk_frames, seed)
    return chunks, adj, adj_feats


def transfer(audio: np.ndarray, sample_rate: int, model: str | Model = DEFAULT_MODEL,
             octave: str | int = "auto", pitch_shift: float = 0.0,
             loudness: str | float = "auto", pitch: str = "crepe-tiny",
             sr_out: int | None = None, seed: int = 0) -> tuple[np.ndarray, int]:
    """Timbre transfer of mono ``audio`` -> ``(audio, sample_rate)``, at the input's rate
    unless ``sr_out`` is given."""
    m = _model(model)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise UserError(f"audio must be mono (1-D), got shape {audio.shape}")
    feats = extract_features(audio, sample_rate, pitch=pitch, frame_rate=m.frame_rate,
                             loudness_rate=m.sample_rate)
    chunks, _, _ = transfer_features(feats, m, octave, pitch_shift, loudness, pitch, seed)
    out = np.concatenate(list(chunks))
    rate = sr_out or sample_rate
    return resample(out, m.sample_rate, rate), rate


@dataclass
class FileResult:
    output: str
    seconds: float
    sample_rate: int
    adjustment: Adjustment


def transfer_file(input_path: str, output_path: str, model: str | Model = DEFAULT_MODEL,
                  octave: str | int = "auto", pitch_shift: float = 0.0,
                  loudness: str | float = "auto", pitch: str = "crepe-tiny",
                  sr_out: int | None = None, seed: int = 0, block_seconds: float = 30.0
                  ) -> FileResult:
    """Transfer a file of any length in bounded memory: features block by block, synthesis
    chunk by chunk, resampled and written as it goes to a temporary file that replaces
    ``output_path`` only when complete."""
    from pathlib import Path

    from .features.extract import extract_features_file
    from .io import open_audio, write_audio_chunks

    src, dst = Path(input_path), Path(output_path)
    refuse_overwrite(dst, src)
    output_format(dst)
    m = _model(model)
    feats = extract_features_file(src, pitch=pitch, frame_rate=m.frame_rate,
                                  loudness_rate=m.sample_rate, block_seconds=block_seconds)
    if sr_out is None:
        with open_audio(src) as f:
            sr_out = f.samplerate
    chunk_frames = max(1, int(min(block_seconds, 10.0) * m.frame_rate))
    chunks, adj, _ = transfer_features(feats, m, octave, pitch_shift, loudness, pitch, seed,
                                       chunk_frames)
    written = write_audio_chunks(dst, chunks, m.sample_rate, sr_out)
    return FileResult(str(dst), written / sr_out, sr_out, adj)
