"""fastddsp: fast DDSP instrument synthesis and timbre transfer.

The names users and tests import live here: ``Model``, ``load``, ``extract_features``,
``transfer``.
"""

from .errors import FastDDSPError, ModelFileError, UnknownModelError, UserError
from .features import Features, extract_features
from .models import PRESETS, Model, ModelConfig, bundled_models, load
from .timbre_transfer import transfer

__version__ = "0.1.0"

__all__ = [
           "PRESETS",
           "FastDDSPError",
           "Features",
           "Model",
           "ModelConfig",
           "ModelFileError",
           "UnknownModelError",
           "UserError",
           "__version__",
           "bundled_models",
           "extract_features",
           "load",
    "transfer",
]
