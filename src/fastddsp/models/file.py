"""The model file: one safetensors file holding the weights (decoder, reverb IR, norm statistics)
and, in its metadata, the JSON config, the training-set statistics and a SHA-256 of both.
Loading never executes code (no pickle); a truncated or altered file is refused, and every
config field and statistic is checked (type and range) before anything is allocated.

Version 2 (written since 0.1.0's hardening) hashes the tensors and every metadata entry;
version 1 files hashed the tensors alone and are still read (their config and statistics are
validated all the same)."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..atomic import atomic_path
from ..errors import ModelFileError
from .config import ModelConfig

if TYPE_CHECKING:
    from .model import Model

FORMAT = "fastddsp-model"
VERSION = 2
READABLE_VERSIONS = ("1", "2")
SUFFIX = ".fddsp"


def tensor_digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
                  ) -> str:
    """SHA-256 of the tensors (names, dtypes, shapes, bytes) and, from version 2 on, of every
    metadata entry but the digest itself."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for key, value in sorted((metadata or {}).items()):
        if key != "sha256":
            h.update(f"meta|{key}|{len(value)}|{value}".encode())
    return h.hexdigest()


def save_model(model: Model, path: str | Path) -> Path:
    """Write ``model`` to ``path`` atomically (".fddsp" is appended when there is no suffix)."""
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(SUFFIX)
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    backend = {}
    if model.is_quantized:  # the decoder is a stored ONNX graph, not PyTorch weights
        tensors["decoder.onnx"] = torch.frombuffer(bytearray(model.decoder.onnx_bytes),
                                                   dtype=torch.uint8)
        backend = {"backend": "onnx-int8",
                   "decoder_parameters": str(model.decoder_parameters)}
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": json.dumps(model.config.to_dict()),
        "stats": json.dumps(model.stats, allow_nan=False),
        **backend,
        **({"attribution": model.attribution} if model.attribution else {}),
    }
    metadata["sha256"] = tensor_digest(tensors, metadata)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


MAX_QUANTILES = 1001


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelFileError(f"statistic {where} must be a finite number")
    return float(value)


def check_stats(stats: Any) -> dict[str, Any]:
    """The training statistics a model file carries, checked where the code reads them: a JSON
    object whose ``pitch_midi`` and ``loudness_db`` hold a finite ``mean`` and at most
    1001 finite, non-decreasing ``quantiles`` (MIDI within -100..300, dB within -200..100)."""
    if not isinstance(stats, dict):
        raise ModelFileError("the statistics must be a JSON object")
    for key, (lo, hi) in (("pitch_midi", (-100.0, 300.0)), ("loudness_db", (-200.0, 100.0))):
        entry = stats.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ModelFileError(f"statistic {key} must be an object")
        values = [_number(entry["mean"], f"{key}.mean")] if "mean" in entry else []
        if "std" in entry and _number(entry["std"], f"{key}.std") < 0:
            raise ModelFileError(f"statistic {key}.std must not be negative")
        q = entry.get("quantiles")
        if q is not None:
            if not isinstance(q, list) or not 2 <= len(q) <= MAX_QUANTILES:
                raise ModelFileError(f"statistic {key}.quantiles must be a list of 2.."
                                     f"{MAX_QUANTILES} numbers")
            values += [_number(v, f"{key}.quantiles") for v in q]
            if any(b < a for a, b in itertools.pairwise(q)):
                raise ModelFileError(f"statistic {key}.quantiles must not decrease")
        if any(not lo <= v <= hi for v in values):
            raise ModelFileError(f"statistic {key} is outside {lo:g}..{hi:g}")
    return stats


ModelFileParts = tuple[ModelConfig, dict[str, Any], dict[str, torch.Tensor], dict[str, str]]


def read_model_file(path: str | Path) -> ModelFileParts:
    """A model file -> (config, statistics, tensors, metadata), every part checked (format,
    version, digest, config and statistics); ``models.model.load_model`` builds the model."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path} is not a readable model file (truncated or corrupt?): "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a safetensors file but not a fastddsp model")
    version = meta.get("version")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(f"{path} has model format version {version!r}; "
                             f"this fastddsp reads versions {', '.join(READABLE_VERSIONS)}")
    if tensor_digest(tensors, meta if version != "1" else None) != meta.get("sha256"):
        raise ModelFileError(f"{path} failed its checksum: its weights, config or statistics "
                             f"were altered or damaged")
    try:
        config = ModelConfig.from_dict(json.loads(meta["config"]))
        stats = check_stats(json.loads(meta.get("stats", "{}")))
    except (KeyError, json.JSONDecodeError, ModelFileError) as e:
        raise ModelFileError(f"{path} has an invalid config or statistics: "
                             f"{str(e).splitlines()[0]}") from None
    backend = meta.get("backend")
    if backend not in (None, "onnx-int8"):
        raise ModelFileError(f"{path} needs decoder backend {backend!r}, "
                             f"which this fastddsp does not know")
    return config, stats, tensors, meta
