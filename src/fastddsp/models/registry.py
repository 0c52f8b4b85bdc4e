"""Named models: the pretrained files bundled in the package, and name -> model resolution."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..errors import UnknownModelError
from .config import PRESETS
from .file import SUFFIX
from .model import Model, load_model


def bundled_models() -> dict[str, Path]:
    """Name -> file of every pretrained model shipped in ``fastddsp/pretrained``."""
    root = resources.files("fastddsp") / "pretrained"
    found: dict[str, Path] = {}
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.endswith(SUFFIX):
                found[entry.name[: -len(SUFFIX)]] = Path(str(entry))
    return dict(sorted(found.items()))


def looks_like_path(text: str) -> bool:
    """A model argument names a file when it contains a path separator or ends in ``.fddsp``;
    anything else is a bundled model's name (or a preset's), whatever files the working folder
    holds, so a file called ``violin-tiny`` there never stands in for the bundled model."""
    return text.endswith(SUFFIX) or "/" in text or (os.sep != "/" and os.sep in text)


def model_file(name_or_path: str | Path) -> Path | None:
    """The file a model argument reads: the path itself, or the bundled model's file; None
    for anything else (a preset, an unknown name)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or looks_like_path(text):
        return Path(text)
    return bundled_models().get(text)


def load(name_or_path: str | Path, runtime: str = "onnxruntime") -> Model:
    """A model from a file path or a bundled model's name (see ``looks_like_path``), decoding
    in ``runtime``: ``"onnxruntime"`` (the default: the same outputs within 1e-5, 1.5-4x
    faster on one CPU thread) or ``"torch"`` (the PyTorch decoder as written, for debugging)."""
    path = model_file(name_or_path)
    if path is not None:
        return load_model(path, runtime)
    text = str(name_or_path)
    hint = (f"; to load the file {text!r} here, write ./{text}" if Path(text).is_file() else "")
    raise UnknownModelError(
        f"unknown model {text!r}: not a model file (a path with a / or ending in {SUFFIX}) and "
        f"not a bundled model (bundled: {', '.join(bundled_models()) or 'none'}; presets for "
        f"new models: {', '.join(PRESETS)}){hint}")


def resolve(name: str) -> Model:
    """Like ``load`` but also accepts a preset name (giving an untrained model)."""
    if name in PRESETS and model_file(name) is None:
        return Model.from_preset(name)
    return load(name)
