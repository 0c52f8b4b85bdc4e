"""How every offline command writes its audio: optionally brought to a target loudness (a
first pass to a temporary file measures it), a short fade-in (no click where the instrument
starts), the peak limiter (no clipped sample, whatever the controls ask for), then the
streamed atomic write of ``io.write_audio_chunks``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import numpy as np
import soundfile as sf

from ..dsp.limiter import LimiterReport, limit_chunks, limiter_note
from ..features.lufs import LoudnessMeter
from ..io import write_audio_chunks

FADE_IN_S = 0.005  # raised-cosine fade over the first 5 ms
MAX_GAIN_DB = 40.0  # the most a loudness match changes the level, either way


@dataclass
class Written:
    samples: int          # at the output rate
    limited_db: float     # the limiter's largest gain reduction (0: nothing limited)
    gain_db: float = 0.0  # the gain that brought it to the target loudness

    def limiter_note(self) -> str:
        """One line for the user when the limiter acted, else empty."""
        return limiter_note(self.limited_db)


def fade_in(chunks: Iterator[np.ndarray], sample_rate: float, seconds: float = FADE_IN_S
            ) -> Iterator[np.ndarray]:
    """The chunks with their first ``seconds`` faded in (raised cosine)."""
    n = max(1, round(seconds * sample_rate))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    done = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, np.float32)
        if done < n and chunk.size:
            k = min(n - done, chunk.size)
            chunk = chunk.copy()
            chunk[:k] *= ramp[done: done + k]
            done += k
        yield chunk


def output_rate(input_rate: int, model_rate: int) -> int:
    """The default rate of a rendering from an input: the input's, or the model's where that
    is higher (a 48 kHz model's band is never cut to a 16 kHz input's; a 16 kHz model's
    output comes back at the input's rate)."""
    return max(int(input_rate), int(model_rate))


def lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of ``audio`` ``[samples]`` or ``[samples, channels]``."""
    audio = np.asarray(audio)
    meter = LoudnessMeter(sample_rate, 1 if audio.ndim == 1 else audio.shape[1])
    meter.add(audio)
    return meter.lufs()


def finish(audio: np.ndarray, sample_rate: int, target_lufs: float | None = None
           ) -> tuple[np.ndarray, Written]:
    """What ``write_output`` does, for audio in memory: at ``target_lufs`` (if finite), faded
    in, peak-limited. Returns the audio and what was done."""
    audio = np.asarray(audio, np.float32)
    gain_db = _gain_db(lufs(audio, sample_rate), target_lufs) if _matching(target_lufs) else 0.0
    report = LimiterReport()
    scaled = audio * np.float32(10 ** (gain_db / 20))
    out = np.concatenate(list(_finished(iter([scaled]), sample_rate, report)))
    return out, Written(out.size, report.max_reduction_db, gain_db)


def write_output(path: str | Path, chunks: Iterator[np.ndarray], sample_rate: int,
                 out_rate: int | None = None, target_lufs: float | None = None) -> Written:
    """Write a rendering (mono chunks at ``sample_rate``) to ``path`` at ``out_rate``; with
    ``target_lufs`` (finite), at that integrated loudness (before the limiter)."""
    if not _matching(target_lufs):
        return _write(path, chunks, sample_rate, out_rate, 0.0)
    with tempfile.TemporaryDirectory(prefix="fastddsp-") as tmp:
        raw = Path(tmp) / "raw.rf64"  # RF64: no 4 GB limit (24 h at 16 kHz is 5.5 GB)
        meter = LoudnessMeter(sample_rate)
        with sf.SoundFile(str(raw), "w", sample_rate, 1, "FLOAT", format="RF64") as f:
            for chunk in chunks:
                meter.add(chunk)
                f.write(np.asarray(chunk, np.float32))
        gain_db = _gain_db(meter.lufs(), target_lufs)
        with sf.SoundFile(str(raw)) as f:
            blocks = (b * 10 ** (gain_db / 20) for b in f.blocks(1 << 16, dtype="float32"))
            return _write(path, blocks, sample_rate, out_rate, gain_db)


def _matching(target_lufs: float | None) -> TypeGuard[float]:
    """Whether there is a loudness to match (a finite target)."""
    return target_lufs is not None and bool(np.isfinite(target_lufs))


def _gain_db(level: float, target_lufs: float) -> float:
    """The gain from ``level`` to the target (within ±MAX_GAIN_DB); 0 for silence."""
    if not np.isfinite(level):
        return 0.0
    return float(np.clip(target_lufs - level, -MAX_GAIN_DB, MAX_GAIN_DB))


def _finished(chunks: Iterator[np.ndarray], sample_rate: int, report: LimiterReport
              ) -> Iterator[np.ndarray]:
    """The chunks faded in and peak-limited: the last stage of every output."""
    return limit_chunks(fade_in(chunks, sample_rate), sample_rate, report=report)


def _write(path: str | Path, chunks: Iterator[np.ndarray], sample_rate: int,
           out_rate: int | None, gain_db: float) -> Written:
    report = LimiterReport()
    n = write_audio_chunks(path, _finished(chunks, sample_rate, report), sample_rate, out_rate)
    return Written(n, report.max_reduction_db, gain_db)
