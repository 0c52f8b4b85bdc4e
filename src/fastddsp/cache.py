"""The cache: computed features (``features.extract``) and decoders exported for ONNX Runtime
(``models.onnx_decoder``), under ``~/.cache/fastddsp/features`` (``FASTDDSP_CACHE``), bounded
(least recently used entries go first), switched off within ``cache_disabled``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def default_cache_dir() -> Path:
    env = os.environ.get("FASTDDSP_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastddsp" / "features"


MAX_CACHE_MB = 1024.0  # the cache's upper bound (FASTDDSP_CACHE_MAX_MB changes it)
_enabled = True


def cache_enabled() -> bool:
    return _enabled


@contextlib.contextmanager
def cache_disabled() -> Iterator[None]:
    """The cache neither read nor written within (``--no-cache``)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def decoder_cache_dir() -> Path | None:
    """Where decoders exported for ONNX Runtime are kept (inside the cache, so its bound,
    ``--no-cache`` and ``fastddsp cache --clear`` cover them); None while the cache is off."""
    return default_cache_dir() / "decoders" if _enabled else None


def cache_limit_bytes() -> int:
    try:
        mb = float(os.environ.get("FASTDDSP_CACHE_MAX_MB", MAX_CACHE_MB))
    except ValueError:
        raise UserError("FASTDDSP_CACHE_MAX_MB must be a number of megabytes") from None
    return int(max(mb, 0.0) * 1e6)


def cache_entries(folder: Path | None = None) -> list[Path]:
    """The cache's entries, least recently used first."""
    folder = default_cache_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    entries = [*folder.glob("*.npz"), *folder.glob("decoders/*.onnx")]
    return sorted(entries, key=lambda p: p.stat().st_mtime)


def clear_cache(folder: Path | None = None) -> tuple[int, int]:
    """Delete every entry; returns (entries, bytes) removed."""
    count = size = 0
    for entry in cache_entries(folder):
        size += entry.stat().st_size
        entry.unlink(missing_ok=True)
        count += 1
    return count, size


def trim_cache(folder: Path) -> None:
    """Drop least recently used entries until the cache is within its bound."""
    entries = cache_entries(folder)
    sizes = [e.stat().st_size for e in entries]
    total, limit = sum(sizes), cache_limit_bytes()
    for entry, size in zip(entries, sizes, strict=True):
        if total <= limit:
            break
        entry.unlink(missing_ok=True)
        total -= size
