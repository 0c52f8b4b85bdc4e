"""fastddsp: fast DDSP instrument synthesis and timbre transfer.

The names users and tests import live here: ``Model``, ``load``, ``extract_features``,
``transfer``, ``Stream``.
"""

from .errors import FastDDSPError, ModelFileError, UnknownModelError, UserError
from .features import Features, extract_features
from .models import PRESETS, Model, ModelConfig, bundled_models, load
from .pipelines.transfer import transfer
from .realtime.stream import Stream

__version__ = "0.1.0"

__all__ = [
           "PRESETS",
           "FastDDSPError",
           "Features",
           "Model",
           "ModelConfig",
           "ModelFileError",
           "Stream",
           "UnknownModelError",
           "UserError",
           "__version__",
           "bundled_models",
           "extract_features",
           "load",
           "transfer",
]
