"""Timbre transfer: any recording -> the same melody played by a model's instrument.

features (pitch + loudness) -> adjust to the model's training data (``features.adjust``) ->
chunked synthesis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..features import extract_features
from ..features.adjust import Adjustment, adjust_features, parse_loudness, parse_octave
from ..features.extract import extract_features_file
from ..features.frames import Features
from ..features.lufs import LoudnessMeter
from ..features.pitch import get_tracker
from ..io import (
    check_input_file,
    known_seconds,
    open_audio,
    output_format,
    read_blocks,
    refuse_overwrite,
    resample,
)
from ..limits import check_adjustment
from ..models.chunked import render_chunks
from ..models.model import Model
from ..models.registry import load
from ..progress import ProgressFactory, counted, no_progress
from .output import finish, lufs, output_rate, write_output

DEFAULT_MODEL = "violin-tiny"


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
    """Timbre transfer of mono ``audio`` -> ``(audio, sample_rate)``, at the input's rate (the
    model's where that is higher: ``output.output_rate``) unless ``sr_out`` is given; as
    ``transfer_file``: at the input's loudness with ``loudness="auto"``, faded in,
    peak-limited."""
    m = _model(model)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise UserError(f"audio must be mono (1-D), got shape {audio.shape}")
    feats = extract_features(audio, sample_rate, pitch=pitch, frame_rate=m.frame_rate,
                             loudness_rate=m.sample_rate)
    chunks, adj, _ = transfer_features(feats, m, octave, pitch_shift, loudness, pitch, seed)
    target = lufs(audio, sample_rate) if adj.loudness_mode == "auto" else None
    out, _ = finish(np.concatenate(list(chunks)), m.sample_rate, target)
    rate = sr_out or output_rate(sample_rate, m.sample_rate)
    return resample(out, m.sample_rate, rate), rate


@dataclass
class FileResult:
    output: str
    seconds: float
    sample_rate: int
    adjustment: Adjustment
    limiter_note: str = ""   # one line when the peak limiter acted
    matched_db: float | None = None  # the gain that matched the input's loudness, if it did


def transfer_file(input_path: str, output_path: str, model: str | Model = DEFAULT_MODEL,
                  octave: str | int = "auto", pitch_shift: float = 0.0,
                  loudness: str | float = "auto", pitch: str = "crepe-tiny",
                  sr_out: int | None = None, seed: int = 0, block_seconds: float = 30.0,
                  progress: ProgressFactory = no_progress) -> FileResult:
    """Transfer a file of any length in bounded memory: features block by block, synthesis
    chunk by chunk, resampled and written as it goes to a temporary file that replaces
    ``output_path`` only when complete. ``progress`` makes the bars of the two passes
    (``progress.seconds_bar``; none by default)."""

    src, dst = Path(input_path), Path(output_path)
    refuse_overwrite(dst, src)
    output_format(dst)
    check_adjustment(parse_octave(octave), pitch_shift, parse_loudness(loudness))
    m = _model(model)
    check_input_file(src, "audio file")
    with open_audio(src) as f:
        duration = known_seconds(f)
        input_rate, channels = f.samplerate, f.channels
        sr_out = sr_out or output_rate(input_rate, m.sample_rate)
    meter = LoudnessMeter(input_rate, channels)
    with progress(f"{pitch} pitch", duration) as advance:
        def on_block(block: np.ndarray, rate: int) -> None:
            meter.add(block)
            advance(block.shape[0] / rate)

        feats = extract_features_file(src, pitch=pitch, frame_rate=m.frame_rate,
                                      loudness_rate=m.sample_rate, block_seconds=block_seconds,
                                      on_block=on_block)
        if not meter.steps:  # cached features: nothing was decoded
            advance(duration)
    chunk_frames = max(1, int(min(block_seconds, 10.0) * m.frame_rate))
    chunks, adj, _ = transfer_features(feats, m, octave, pitch_shift, loudness, pitch, seed,
                                       chunk_frames)
    target = None
    if adj.loudness_mode == "auto":  # the user asked for nothing else: the input's loudness
        target = meter.lufs() if meter.steps else _file_lufs(src)
    with progress("synthesis", feats.n_frames / m.frame_rate) as advance:
        written = write_output(dst, counted(chunks, m.sample_rate, advance), m.sample_rate,
                               sr_out, target_lufs=target)
    return FileResult(str(dst), written.samples / sr_out, sr_out, adj, written.limiter_note(),
                      written.gain_db if target is not None else None)


def _file_lufs(path: Path) -> float:
    """The integrated loudness of an audio file, read block by block."""
    with open_audio(path) as f:
        meter = LoudnessMeter(f.samplerate, f.channels)
        for block in read_blocks(f, 1 << 16):
            meter.add(block)
    return meter.lufs()
