"""fastddsp: fast DDSP instrument synthesis and timbre transfer.

The names users import live here: ``Model``, ``load``, ``Stream``, ``extract_features``,
``transfer``, the errors. They are imported on first use (PEP 562), so ``import fastddsp`` and
the command line's start stay light until something needs PyTorch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "FastDDSPError": ".errors", "ModelFileError": ".errors", "UnknownModelError": ".errors",
    "UserError": ".errors", "Features": ".features", "extract_features": ".features",
    "PRESETS": ".models", "Model": ".models", "ModelConfig": ".models",
    "bundled_models": ".models", "load": ".models", "transfer": ".pipelines.transfer",
    "Stream": ".realtime.stream",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
    else:
        try:  # a submodule, as `fastddsp.io` after `import fastddsp`
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'fastddsp' has no attribute {name!r}") from None
    globals()[name] = value
    return value


if TYPE_CHECKING:  # the names above, for type checkers and editors
    from .errors import FastDDSPError, ModelFileError, UnknownModelError, UserError  # noqa: F401
    from .features import Features, extract_features  # noqa: F401
    from .models import PRESETS, Model, ModelConfig, bundled_models, load  # noqa: F401
    from .pipelines.transfer import transfer  # noqa: F401
    from .realtime.stream import Stream  # noqa: F401
