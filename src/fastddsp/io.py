"""File I/O at the edge: audio (soundfile, soxr). Every write is atomic;
every read failure is a ``UserError`` with a one-line reason."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_path
from .errors import UserError
from .limits import check_input_rate, check_samples


def check_input_file(path: Path, what: str) -> None:
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory, not a file")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes)")


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name the same file (by resolved path, or as links to one file)."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def refuse_overwrite(output: Path, *inputs: Path | None) -> None:
    """An input file is never overwritten: refuse an output that is one of the inputs."""
    for i in inputs:
        if i is not None and same_file(Path(output), Path(i)):
            raise UserError(f"output {output} is the input file {i}; refusing to overwrite it")


def check_outputs(pairs: list[tuple[Path, Path]]) -> None:
    """Several (input, output) pairs written by one command: refuse, before anything is
    written, an output that is any of the inputs and two inputs whose outputs coincide."""
    inputs = [i for i, _ in pairs]
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        refuse_overwrite(dst, *inputs)
        key = dst.resolve()
        if key in seen:
            raise UserError(f"{seen[key]} and {src} would both be written to {dst}; give them "
                            f"separate -o files or rename one")
        seen[key] = src


def file_sha256(path: Path, extra: bytes = b"") -> str:
    """SHA-256 of a file's bytes (read in 1 MiB pieces) followed by ``extra``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    h.update(extra)
    return h.hexdigest()


@contextlib.contextmanager
def decoder_quiet() -> Iterator[None]:
    """Silences what the decoder libraries under soundfile (mpg123, libvorbis, ...) print on
    the process's stderr about a damaged file ("Note: Trying to resync..."): fastddsp reports a
    bad input in one line of its own."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr to silence
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_audio(path: str | Path) -> sf.SoundFile:
    """An audio file opened for (block-wise) reading; every failure is a one-line UserError,
    and so is a sample rate outside fastddsp's range (``limits``)."""
    path = Path(path)
    check_input_file(path, "audio file")
    try:
        with decoder_quiet():
            f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"cannot read {path} as audio: {first}") from None
    try:
        check_input_rate(f.samplerate, f"audio file {path}")
    except UserError:
        f.close()
        raise
    return f


def read_blocks(f: sf.SoundFile, blocksize: int, max_frames: int | None = None
                ) -> Iterator[np.ndarray]:
    """``f``'s samples as float32 ``[frames, channels]`` blocks (at most ``max_frames`` in
    all), each read with the decoders quiet; a decoding failure midway is a UserError."""
    read = 0
    while max_frames is None or read < max_frames:
        n = blocksize if max_frames is None else min(blocksize, max_frames - read)
        try:
            with decoder_quiet():
                block = f.read(n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise UserError(f"cannot decode {f.name}: {str(e).splitlines()[0]}") from None
        if block.shape[0] == 0:
            return
        read += block.shape[0]
        yield block


# The share of the narrower Nyquist frequency that ``resample`` keeps within 1 dB (soxr "HQ",
# measured on white noise for 0.8-1.25x rate changes: 0.941-0.944; -20 dB by 0.972).
RESAMPLE_PASSBAND = 0.94


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr) of mono float audio."""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio.astype(np.float32, copy=False), sr_in, sr_out, quality="HQ")


# libsndfile's frame count for a stream of unknown length is 2**63 - 1: no length to check
UNKNOWN_FRAMES = 1 << 62
READ_BLOCK_SAMPLES = 1 << 20  # samples (frames x channels) decoded at a time


def known_seconds(f: sf.SoundFile) -> float:
    """``f``'s length in seconds from its header; 0 when the header does not say."""
    return f.frames / f.samplerate if 0 < f.frames < UNKNOWN_FRAMES else 0.0


def read_audio(path: str | Path, sample_rate: int | None = None,
               max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Any file soundfile reads -> mono float32 (channels averaged), resampled to
    ``sample_rate`` when given. Returns (audio, rate). The file is decoded block by block and
    mixed to mono as it goes; every block is checked (``limits.check_samples``). With
    ``max_seconds`` a longer file is refused from its header, before decoding, and decoding
    stops as soon as more than that has been read (a header may understate or omit the
    length), so memory stays bounded by ``max_seconds`` whatever the file claims."""
    path = Path(path)
    with open_audio(path) as f:
        sr, frames = f.samplerate, f.frames
        limit = None if max_seconds is None else int(max_seconds * sr)  # frames
        if limit is not None and limit < frames < UNKNOWN_FRAMES:
            raise UserError(f"audio file {path} is {frames / sr:.0f} s long; at most "
                            f"{max_seconds:g} s are accepted")
        parts, read = [], 0
        blocksize = max(1, READ_BLOCK_SAMPLES // max(1, f.channels))
        for block in read_blocks(f, blocksize, None if limit is None else limit + 1):
            check_samples(block, f"audio file {path}")
            read += block.shape[0]
            if limit is not None and read > limit:
                raise UserError(f"audio file {path} is over {max_seconds:g} s long; at most "
                                f"{max_seconds:g} s are accepted")
            parts.append(block.mean(axis=1))
    if read == 0:
        raise UserError(f"audio file {path} contains no samples")
    audio = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if sample_rate is not None:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return audio, int(sr)


OUTPUT_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"),
                  ".ogg": ("OGG", "VORBIS")}


def output_format(path: Path) -> tuple[str, str]:
    """The soundfile (format, subtype) an output file's suffix asks for; a UserError for any
    other suffix."""
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unsupported output format {path.suffix!r}: use .wav, .flac or .ogg")
    return fmt


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio atomically; the format follows the suffix (wav: 16-bit PCM)."""
    write_audio_chunks(path, iter([np.asarray(audio, dtype=np.float32)]), sample_rate)
    return Path(path)


def write_audio_chunks(path: str | Path, chunks: Iterator[np.ndarray], sample_rate: int,
                       out_rate: int | None = None) -> int:
    """Write mono audio that arrives in chunks at ``sample_rate``, resampled on the fly to
    ``out_rate`` (default: the same), in memory bounded by a chunk, to a temporary file that
    replaces ``path`` only when complete. Returns the number of samples written."""
    path = Path(path)
    fmt, subtype = output_format(path)
    rate = out_rate or sample_rate
    stream = (soxr.ResampleStream(sample_rate, rate, 1, dtype="float32", quality="HQ")
              if rate != sample_rate else None)
    written = 0
    with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", rate, 1, subtype,
                                                 format=fmt) as out:
        pending = next(chunks, None)
        while pending is not None:
            following = next(chunks, None)
            y = np.asarray(pending, dtype=np.float32)
            if not np.all(np.isfinite(y)):
                raise UserError("refusing to write audio with NaN or infinite samples")
            if stream is not None:
                y = stream.resample_chunk(y, last=following is None)
            out.write(np.clip(y, -1.0, 1.0))
            written += y.size
            pending = following
    return written
