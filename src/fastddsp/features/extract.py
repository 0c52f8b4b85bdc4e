"""Audio -> ``Features`` (f0, confidence, loudness at a frame rate), with a content-hash cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr

from ..atomic import atomic_path
from ..cache import cache_enabled, default_cache_dir, trim_cache
from ..errors import UserError
from ..io import check_input_file, file_sha256, open_audio, read_blocks, resample
from ..limits import check_input_rate, check_samples
from .frames import Features
from .loudness import frame_centres, loudness_at, loudness_db
from .pitch import PITCH_RATE, clean_f0, get_tracker, tracker_weights

CACHE_VERSION = 1


def _resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    return resample(audio, sr_in, sr_out)


def _cache_key(audio: np.ndarray, sample_rate: int, settings: dict) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    h.update(json.dumps({"sr": sample_rate, "v": CACHE_VERSION, **settings},
                        sort_keys=True).encode())
    return h.hexdigest()


def extract_features(audio: np.ndarray, sample_rate: int, pitch: str = "crepe-full",
                     frame_rate: float = 250.0, loudness_rate: int = 16000,
                     cache: bool | str | Path = True, pitch_rate: float | None = None
                     ) -> Features:
    """Mono ``audio`` at ``sample_rate`` -> features at ``frame_rate`` frames/s.

    Loudness is computed at ``loudness_rate`` (the model's sample rate), pitch at 16 kHz; f0
    is cleaned (unvoiced frames hold the last voiced pitch; the raw confidence is kept).
    ``pitch_rate`` (frames/s, default ``frame_rate``) tracks pitch at a lower rate and
    interpolates it onto the control frames (see ``interpolate_pitch``): CREPE's cost is per
    frame, and its 64 ms window varies little in 4 ms. Results are cached under the content
    hash of the audio and the settings."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise UserError("the audio is empty")
    check_samples(audio, "the audio")
    check_input_rate(sample_rate, "the audio")
    tracker = get_tracker(pitch)
    pitch_rate = lower_pitch_rate(pitch_rate, frame_rate)
    settings = {"pitch": pitch, "frame_rate": frame_rate, "loudness_rate": loudness_rate,
                **tracker_weights(pitch),
                **({"pitch_rate": pitch_rate} if pitch_rate is not None else {})}
    cache_file = None
    if cache and cache_enabled():
        folder = default_cache_dir() if cache is True else Path(cache)
        cache_file = folder / f"{_cache_key(audio, sample_rate, settings)}.npz"
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached

    duration = audio.size / sample_rate
    n_frames = frame_centres(round(duration * loudness_rate), loudness_rate, frame_rate).size
    ld = loudness_db(_resample(audio, sample_rate, loudness_rate), loudness_rate, frame_rate)
    audio16 = _resample(audio, sample_rate, PITCH_RATE)
    if pitch_rate is None:
        centres16 = np.round(np.arange(n_frames) * PITCH_RATE / frame_rate).astype(np.int64)
        f0_raw, conf = tracker.run(audio16, centres16)
        n = min(n_frames, ld.size, f0_raw.size)
        f0 = clean_f0(f0_raw[:n], conf[:n], tracker.voicing_threshold)
    else:
        # pitch frames to the last control frame's time, none past the audio's end
        last = (n_frames - 1) / frame_rate
        n_pitch = int(np.ceil(last * pitch_rate - 1e-9)) + 1
        centres16 = np.minimum(np.round(np.arange(n_pitch) * PITCH_RATE / pitch_rate),
                               max(audio16.size - 1, 0)).astype(np.int64)
        f0_p, conf_p = tracker.run(audio16, centres16)
        f0_p = clean_f0(f0_p, conf_p, tracker.voicing_threshold)
        f0, conf = interpolate_pitch(f0_p, conf_p, centres16 / PITCH_RATE, n_frames, frame_rate)
        n = min(n_frames, ld.size)
    feats = Features(f0[:n], ld[:n].astype(np.float32), conf[:n].astype(np.float32), frame_rate)

    if cache_file is not None:
        _write_cache(cache_file, feats)
    return feats


def lower_pitch_rate(pitch_rate: float | None, frame_rate: float) -> float | None:
    """A requested pitch rate, checked: None when pitch is tracked at every control frame
    (no rate asked, or the frame rate itself), else the lower rate."""
    if pitch_rate is None or pitch_rate == frame_rate:
        return None
    if not 0 < pitch_rate < frame_rate:
        raise UserError(f"the pitch rate (--pitch-rate) must be positive and at most the frame "
                        f"rate ({frame_rate:g} frames/s), not {pitch_rate:g}")
    return pitch_rate


def interpolate_pitch(f0_hz: np.ndarray, confidence: np.ndarray, pitch_times: np.ndarray,
                      n_frames: int, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Cleaned f0 and its confidence at ``pitch_times`` (s, increasing) -> ``n_frames`` at
    ``frame_rate`` (frame ``i`` centred at ``i / frame_rate`` s): f0 linear in log-frequency
    (a glide stays a glide in cents), confidence linear. Frames outside hold the nearest."""
    t = np.arange(n_frames) / frame_rate
    tp = np.asarray(pitch_times, dtype=np.float64)
    log_f0 = np.interp(t, tp, np.log2(np.maximum(f0_hz.astype(np.float64), 1e-3)))
    conf = np.interp(t, tp, confidence.astype(np.float64))
    return (2.0 ** log_f0).astype(np.float32), conf.astype(np.float32)


def _read_cache(cache_file: Path) -> Features | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file) as z:
            feats = Features(z["f0_hz"], z["loudness_db"], z["confidence"],
                             float(z["frame_rate"]))
        with contextlib.suppress(OSError):
            os.utime(cache_file)  # recently used: the last to be trimmed
        return feats
    except (OSError, ValueError, KeyError):
        cache_file.unlink(missing_ok=True)  # damaged entry: recompute
        return None


def _write_cache(cache_file: Path, feats: Features) -> None:
    try:
        with atomic_path(cache_file, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, f0_hz=feats.f0_hz, loudness_db=feats.loudness_db,
                     confidence=feats.confidence, frame_rate=feats.frame_rate)
        trim_cache(cache_file.parent)
    except OSError:
        pass  # a read-only cache is not an error


class _FrameFeeder:
    """Receives audio at one rate in blocks and computes the frames whose analysis window
    (``half`` samples either side of the centre) has fully arrived; zero padding only at the
    true start and end of the signal, so the frames equal one-pass analysis."""

    def __init__(self, centres: np.ndarray, half: int, analyse):
        self.centres, self.half, self.analyse = centres, half, analyse
        self.buf = np.zeros(0, np.float32)
        self.start = 0          # absolute sample index of buf[0]
        self.next = 0           # next frame to compute
        self.parts: list[tuple[np.ndarray, ...]] = []

    def push(self, block: np.ndarray, last: bool) -> None:
        self.buf = np.concatenate([self.buf, block])
        end = self.start + self.buf.size
        stop = self.centres.size if last else int(np.searchsorted(
            self.centres, end - self.half, side="right"))
        if stop > self.next:
            c = self.centres[self.next: stop]
            lo = max(0, int(c[0]) - self.half)
            # the analysers zero-pad outside the segment they get: only true signal edges
            self.parts.append(self.analyse(self.buf[lo - self.start:], c - lo))
            self.next = stop
        if self.next < self.centres.size:
            keep = max(self.start, int(self.centres[self.next]) - self.half)
            self.buf = self.buf[keep - self.start:]
            self.start = keep

    def result(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(p) for p in zip(*self.parts, strict=True))


def extract_features_file(path: str | Path, pitch: str = "crepe-full", frame_rate: float = 250.0,
                          loudness_rate: int = 16000, block_seconds: float = 30.0,
                          cache: bool = True,
                          on_block: Callable[[np.ndarray, int], None] | None = None
                          ) -> Features:
    """Features of an audio file of any length in bounded memory: the file is read, mixed to
    mono and resampled block by block; only the frame-rate features are kept. Equal to
    ``extract_features`` on the whole file, except that CREPE's Viterbi path is decoded per
    block. ``on_block`` sees each decoded block ``[frames, channels]`` and the file's rate
    (for a progress bar, or a loudness meter); a cached result decodes nothing."""

    path = Path(path)
    check_input_file(path, "audio file")
    tracker = get_tracker(pitch)
    cache_file = None
    if cache and cache_enabled():
        settings = {"pitch": pitch, "frame_rate": frame_rate, "loudness_rate": loudness_rate,
                    "block_seconds": block_seconds, "v": CACHE_VERSION, **tracker_weights(pitch)}
        digest = file_sha256(path, extra=json.dumps(settings, sort_keys=True).encode())
        cache_file = default_cache_dir() / f"{digest}.npz"
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    with open_audio(path) as f:
        sr, total = f.samplerate, f.frames
        if total <= 0:
            raise UserError(f"audio file {path} contains no samples")
        n_model = round(total * loudness_rate / sr)
        centres_ld = frame_centres(n_model, loudness_rate, frame_rate)
        n = centres_ld.size
        centres16 = np.round(np.arange(n) * PITCH_RATE / frame_rate).astype(np.int64)
        ld_feed = _FrameFeeder(centres_ld, 256, lambda a, c: (loudness_at(a, c, loudness_rate),))
        p_feed = _FrameFeeder(centres16, 512, lambda a, c: tracker.run(a, c))
        rs_ld = soxr.ResampleStream(sr, loudness_rate, 1, dtype="float32", quality="HQ")
        rs_p = soxr.ResampleStream(sr, PITCH_RATE, 1, dtype="float32", quality="HQ")
        read = 0
        for block in read_blocks(f, max(1, int(block_seconds * sr))):
            read += block.shape[0]
            check_samples(block, f"audio file {path}")
            mono = block.mean(1)
            last = read >= total
            ld_feed.push(rs_ld.resample_chunk(mono, last=last), last)
            p_feed.push(rs_p.resample_chunk(mono, last=last), last)
            if on_block is not None:
                on_block(block, sr)
            if last:
                break
        if read < total:  # the header promised more samples than the file holds
            ld_feed.push(rs_ld.resample_chunk(np.zeros(0, np.float32), last=True), True)
            p_feed.push(rs_p.resample_chunk(np.zeros(0, np.float32), last=True), True)
    (ld,) = ld_feed.result()
    f0_raw, conf = p_feed.result()
    f0 = clean_f0(f0_raw, conf, tracker.voicing_threshold)
    feats = Features(f0.astype(np.float32), ld.astype(np.float32), conf.astype(np.float32),
                     frame_rate)
    if cache_file is not None:
        _write_cache(cache_file, feats)
    return feats
