"""Named models: the pretrained files bundled in the package, and name -> model resolution."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import UnknownModelError
from .config import PRESETS
from .file import SUFFIX, load_model
from .model import Model


def bundled_models() -> dict[str, Path]:
    """Name -> file of every pretrained model shipped in ``fastddsp/pretrained``."""
    root = resources.files("fastddsp") / "pretrained"
    found: dict[str, Path] = {}
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.endswith(SUFFIX):
                found[entry.name[: -len(SUFFIX)]] = Path(str(entry))
    return dict(sorted(found.items()))


def load(name_or_path: str | Path) -> Model:
    """A model from a file path or a bundled model's name."""
    text = str(name_or_path)
    path = Path(text)
    if path.exists() or text.endswith(SUFFIX) or "/" in text:
        return load_model(path)
    bundled = bundled_models()
    if text in bundled:
        return load_model(bundled[text])
    raise UnknownModelError(
        f"unknown model {text!r}: not a file and not a bundled model "
        f"(bundled: {', '.join(bundled) or 'none'}; presets for new models: {', '.join(PRESETS)})")


def resolve(name: str) -> Model:
    """Like ``load`` but also accepts a preset name (giving an untrained model)."""
    if name in PRESETS and not Path(name).exists() and name not in bundled_models():
        return Model.from_preset(name)
    return load(name)
