"""Decoders, ``Model`` (decoder + synth + stats), presets, the model file and the registry."""

from .config import PRESETS, ModelConfig, preset_config
from .decoders import CNNDecoder, GRUDecoder
from .file import save_model
from .model import RUNTIMES, Model, load_model
from .registry import bundled_models, load, model_file, resolve

__all__ = ["PRESETS", "RUNTIMES", "CNNDecoder", "GRUDecoder", "Model", "ModelConfig",
           "bundled_models", "load", "load_model", "model_file", "preset_config", "resolve",
           "save_model"]
