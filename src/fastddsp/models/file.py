"""The model file: one safetensors file holding the weights (decoder, reverb IR, norm statistics)
and, in its metadata, the JSON config, the training-set statistics and a SHA-256 of the tensor
data. Loading never executes code (no pickle); a truncated or altered file is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..atomic import atomic_path
from ..errors import ModelFileError
from .config import ModelConfig

if TYPE_CHECKING:
    from .model import Model

FORMAT = "fastddsp-model"
VERSION = 1
SUFFIX = ".fddsp"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
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
        "stats": json.dumps(model.stats),
        "sha256": tensor_digest(tensors),
        **backend,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_model(path: str | Path) -> Model:
    from .model import Model

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
    if meta.get("version") != str(VERSION):
        raise ModelFileError(f"{path} has model format version {meta.get('version')!r}; "
                             f"this fastddsp reads version {VERSION}")
    if tensor_digest(tensors) != meta.get("sha256"):
        raise ModelFileError(f"{path} failed its checksum: the weights were altered or damaged")
    try:
        config = ModelConfig.from_dict(json.loads(meta["config"]))
        stats = json.loads(meta.get("stats", "{}"))
    except (KeyError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path} has an unreadable config: {e}") from None
    model = Model(config, stats=stats)
    try:
        if meta.get("backend") == "onnx-int8":
            from .onnx_decoder import OnnxDecoder
            onnx_bytes = tensors.pop("decoder.onnx").numpy().tobytes()
            model.decoder = OnnxDecoder(onnx_bytes, model.decoder.receptive_field,
                                        int(meta.get("decoder_parameters", "0")))
        elif meta.get("backend") is not None:
            raise ModelFileError(f"{path} needs decoder backend {meta['backend']!r}, "
                                 f"which this fastddsp does not know")
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the config: "
                             f"{str(e).splitlines()[0]}") from None
    model.eval()
    return model
