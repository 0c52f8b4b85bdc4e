"""``Model`` = decoder + synthesizer + training-set statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cache import decoder_cache_dir
from ..dsp import SILENCE_DB, Controls, Synth, decoder_inputs
from ..dsp.synth import gated_controls
from ..errors import ModelFileError, UserError
from ..limits import check_controls
from .chunked import render_chunks
from .config import ModelConfig, preset_config
from .decoders import CNNDecoder, GRUDecoder
from .file import read_model_file, save_model
from .onnx_decoder import OnnxDecoder, runtime_decoder


def build_decoder(config: ModelConfig) -> nn.Module:
    if config.decoder == "gru":
        return GRUDecoder(config.n_outputs, hidden=config.channels)
    return CNNDecoder(config.n_outputs, channels=config.channels, dilations=config.dilations,
                      causal=config.causal)


def _as_frames(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D array of frames, got shape {arr.shape}")
    if arr.size == 0:
        raise UserError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{name} contains NaN or infinite values")
    return arr


RUNTIMES = ("torch", "onnxruntime")


class Model(nn.Module):
    """A DDSP instrument: ``synthesize(f0_hz, loudness_db)`` turns frame-rate pitch and loudness
    into audio at ``config.sample_rate``.

    ``runtime`` says what runs the decoder at inference (eval mode, no gradients, CPU):
    ``"torch"`` (the default for a new model) or ``"onnxruntime"`` (the default of ``load``:
    the decoder exported to ONNX on first use, same outputs within 1e-5, GRU ~1.7x, cnn
    ~1.5x, tiny ~4x faster on one thread). Training and gradients always run PyTorch; an int8
    model's decoder is an ONNX graph and always runs in ONNX Runtime."""

    def __init__(self, config: ModelConfig, stats: dict[str, Any] | None = None, seed: int = 0,
                 runtime: str = "torch"):
        super().__init__()
        self.config = config
        self.runtime = runtime
        with torch.random.fork_rng():  # seeded initial weights, global RNG untouched
            torch.manual_seed(seed)
            self.decoder = build_decoder(config)
            self.synth = Synth(config.sample_rate, config.hop_size, config.n_harmonics,
                               config.reverb_seconds, config.n_noise_bands,
                               config.max_harmonic_hz, config.noise_floor)
        self.stats: dict[str, Any] = dict(stats or {})
        # credit the training recordings' licence asks for (CC BY), saved in the model file
        self.attribution = ""
        self.eval()

    @classmethod
    def from_preset(cls, name: str, sample_rate: int = 16000, frame_rate: float = 250.0,
                    seed: int = 0) -> Model:
        """An untrained model of preset ``"full"``, ``"cnn"`` or ``"tiny"``."""
        return cls(preset_config(name, sample_rate, frame_rate), seed=seed)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def decoder_parameters(self) -> int:
        """Parameters of the decoder (of its float original for an int8 decoder)."""
        stored = getattr(self.decoder, "n_parameters", None)
        return stored if stored is not None else sum(p.numel() for p in self.decoder.parameters())

    @property
    def is_quantized(self) -> bool:
        return hasattr(self.decoder, "onnx_bytes")

    @property
    def runtime(self) -> str:
        return self._runtime_name

    @runtime.setter
    def runtime(self, value: str) -> None:
        if value not in RUNTIMES:
            raise UserError(f"unknown runtime {value!r}: use {' or '.join(RUNTIMES)}")
        object.__setattr__(self, "_runtime_name", value)

    def decode(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        """``[B, F]`` pitch (Hz) and loudness (dB) -> raw decoder outputs ``[B, F, n_outputs]``."""
        return self.decode_step(f0_hz, loudness_db)[0]

    def decode_step(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: Any = None
                    ) -> tuple[torch.Tensor, Any]:
        """``decode`` that also takes and returns the decoder's recurrent state (the GRU's;
        None for the CNNs), so a sequence can be decoded piece by piece, in the model's
        ``runtime`` at inference (eval mode, no gradients, CPU). At inference the
        loudness the decoder sees is floored at the training set's quietest loudness (the
        silence gate's open level): below it the gate fades the output, and the decoder is
        never driven tens of dB under anything it learned (which made the tiny models burst
        at onsets from silence). Training sees the data as it is."""
        x = decoder_inputs(f0_hz, loudness_db,
                           SILENCE_DB if self.training else self.silence_gate_db[1])
        if (self.runtime == "onnxruntime" and not self.training and x.device.type == "cpu"
                and not torch.is_grad_enabled() and not self.is_quantized):
            return self._runtime_decoder()(x, state)
        return self.decoder(x, state)

    def _runtime_decoder(self) -> nn.Module:
        """The decoder in ONNX Runtime, exported again whenever the decoder module, the thread
        count or a weight changes (in place, as optimizer steps, ``load_state_dict`` and
        ``copy_`` do: tracked by the tensors' version counters)."""
        cached = getattr(self, "_runtime", None)
        threads = torch.get_num_threads()
        if (cached is not None and cached[0] is self.decoder and cached[1] == threads
                and all(p._version == v for p, v in zip(cached[2], cached[3], strict=True))):
            return cached[4]
        params = tuple(self.decoder.parameters())
        runtime = runtime_decoder(self.decoder, decoder_cache_dir())
        cached = (self.decoder, threads, params, tuple(p._version for p in params), runtime)
        object.__setattr__(self, "_runtime", cached)  # not a submodule: never saved
        return runtime

    @property
    def silence_gate_db(self) -> tuple[float, float]:
        """(closed, open) loudness of the silence gate: open at the quietest loudness of the
        training set (its 0th quantile), closed 30 dB below (not under the -80 dB floor);
        without statistics -80 and -70 dB."""
        q = (self.stats.get("loudness_db") or {}).get("quantiles")
        if not q:
            return (SILENCE_DB, SILENCE_DB + 10.0)
        open_db = max(float(q[0]), SILENCE_DB + 10.0)
        return (max(open_db - 30.0, SILENCE_DB), open_db)

    def controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> Controls:
        return self.controls_from_raw(self.decode(f0_hz, loudness_db), f0_hz, loudness_db)

    def controls_from_raw(self, raw: torch.Tensor, f0_hz: torch.Tensor,
                          loudness_db: torch.Tensor) -> Controls:
        """Raw decoder outputs -> controls, with the silence gate applied at inference (in
        training the decoder learns every frame as it is)."""
        if self.training:
            return self.synth.controls(raw, f0_hz)
        harmonics, noise = gated_controls(raw, f0_hz, loudness_db, self.config.n_harmonics,
                                          self.sample_rate, *self.silence_gate_db,
                                          self.synth.max_harmonic_hz, self.synth.noise_floor)
        return Controls(f0_hz, harmonics, noise)

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                generator: torch.Generator | None = None, seed: int | None = None,
                reverb_ir: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, F]`` pitch and loudness -> audio ``[B, F * hop]`` (differentiable). Noise comes
        from the indexable stream ``seed`` if given, else from ``generator``; ``reverb_ir``
        replaces the model's impulse response (training's room model)."""
        return self.synth(self.controls(f0_hz, loudness_db), generator, seed=seed,
                          reverb_ir=reverb_ir)

    @torch.inference_mode()
    def synthesize(self, f0_hz: Any, loudness_db: Any, seed: int = 0) -> np.ndarray:
        """Frame-rate arrays (at ``frame_rate``) -> mono float32 audio at ``sample_rate``,
        rendered by the stepped chain in blocks (``models.chunked``; equal to one pass of
        ``forward`` within float rounding), the decoder in the model's ``runtime``.
        The noise is seeded, so the same inputs and seed give the same samples. The controls
        must lie within ``limits.check_controls`` (f0 up to Nyquist, loudness up to +50 dB)."""
        f0 = _as_frames("f0_hz", f0_hz)
        ld = _as_frames("loudness_db", loudness_db)
        if f0.shape != ld.shape:
            raise UserError(f"f0_hz and loudness_db differ in length ({f0.size} vs {ld.size})")
        check_controls(f0, ld, self.sample_rate, "synthesize")
        return np.concatenate(list(render_chunks(self, f0, ld, seed=seed)))

    def save(self, path: str | Path) -> Path:
        return save_model(self, path)

    def describe(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "frame_rate": self.frame_rate,
                "decoder_parameters": self.decoder_parameters,
                "int8": self.is_quantized,
                "runtime": "onnxruntime" if self.is_quantized else self.runtime,
                "receptive_field_frames": list(self.decoder.receptive_field),
                "attribution": self.attribution,
                "stats": self.stats}


@torch.inference_mode()
def one_pass(model: Model, f0_hz: Any, loudness_db: Any, seed: int = 0) -> np.ndarray:
    """The whole sequence in one pass of ``Model.forward`` (the training path: one FFT
    convolution, no state), at inference: the independent reference that the stepped chain
    (``Model.synthesize``, the stream, the chain graph) is tested against."""
    f0 = torch.as_tensor(np.asarray(f0_hz, np.float32))[None]
    ld = torch.as_tensor(np.asarray(loudness_db, np.float32))[None]
    was_training = model.training
    model.eval()
    try:
        return model(f0, ld, seed=seed)[0].numpy().astype(np.float32, copy=False)
    finally:
        model.train(was_training)


def load_model(path: str | Path, runtime: str = "onnxruntime") -> Model:
    """The model in a file (``models.file``), decoding in ``runtime`` (see ``Model``)."""
    config, stats, tensors, meta = read_model_file(path)
    model = Model(config, stats=stats)
    try:
        if meta.get("backend") == "onnx-int8":
            onnx_bytes = tensors.pop("decoder.onnx").numpy().tobytes()
            model.decoder = OnnxDecoder(onnx_bytes, model.decoder.receptive_field,
                                        int(meta.get("decoder_parameters", "0")))
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the config: "
                             f"{str(e).splitlines()[0]}") from None
    model.runtime = runtime
    model.attribution = meta.get("attribution", "")
    return model.eval()
