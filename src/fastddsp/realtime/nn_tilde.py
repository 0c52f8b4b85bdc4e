"""The streaming engine as a TorchScript module that nn~ (Max/MSP, Pure Data) can load.

It follows the conventions of the nn_tilde package (without depending on it): every method
takes and returns one ``[batch, channels, samples]`` float tensor; a buffer
``<method>_params`` holds ``[in_channels, in_ratio, out_channels, out_ratio]``;
``get_methods()`` lists the methods, ``<method>_input_labels`` / ``_output_labels`` name the
inlets and outlets; ``get_attributes()`` lists the settable attributes, each with a
``<name>_params`` buffer of type codes (1 int, 2 float) and ``get_<name>`` / ``set_<name>``.

Methods: ``forward`` (audio in -> instrument audio out, the timbre transfer of
``Stream.process``), ``synthesize`` (two control signals, f0 in Hz and loudness in dB ->
audio) and ``synthesize_voices`` (polyphony: an f0/loudness pair of inlets per voice, the
voices mixed in one room -> audio; the host drives each pair from its own note, e.g. with
``poly~`` or a MIDI-to-signal patch). The module runs at the model's rate (``sr``, 16 kHz):
run the host at that rate, or let it resample. State lives in the module, so one instance
serves one voice (or one set of voices); ``reset`` clears it. Batched calls (mc.nn~) get a
state per batch row.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import UserError
from ..limits import NN_TILDE_VOICES_MAX
from ..models.model import Model
from .stream import StreamEngine


class NNTildeEngine(nn.Module):
    def __init__(self, model: Model, voices: int = 8):
        super().__init__()
        if not 1 <= voices <= NN_TILDE_VOICES_MAX:
            raise UserError(f"an nn~ export has 1..{NN_TILDE_VOICES_MAX} voices")
        if model.is_quantized:
            raise UserError("an int8 model runs in ONNX Runtime and cannot become a "
                            "TorchScript module; export its float model instead")
        self.engine = StreamEngine(model)
        self.engine.reset(1)
        self.poly = StreamEngine(model, mix=True)
        self.voices = voices
        self.poly.reset(voices)
        self.sr = model.sample_rate
        self.octave = 0
        self.pitch_shift = 0.0
        self.loudness = 0.0
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.register_buffer("synthesize_params", torch.tensor([2, 1, 1, 1]))
        self.register_buffer("synthesize_voices_params", torch.tensor([2 * voices, 1, 1, 1]))
        self.register_buffer("octave_params", torch.tensor([1]))
        self.register_buffer("pitch_shift_params", torch.tensor([2]))
        self.register_buffer("loudness_params", torch.tensor([2]))
        self.forward_input_labels = ["(signal) audio in"]
        self.forward_output_labels = ["(signal) instrument out"]
        self.synthesize_input_labels = ["(signal) f0 in Hz", "(signal) loudness in dB"]
        self.synthesize_output_labels = ["(signal) instrument out"]
        self.synthesize_voices_input_labels = [
            f"(signal) voice {v // 2 + 1} {'f0 in Hz' if v % 2 == 0 else 'loudness in dB'}"
            for v in range(2 * voices)]
        self.synthesize_voices_output_labels = ["(signal) instrument out"]

    @torch.jit.export
    def get_methods(self) -> list[str]:
        return ["forward", "synthesize", "synthesize_voices"]

    @torch.jit.export
    def get_attributes(self) -> list[str]:
        return ["octave", "pitch_shift", "loudness"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine.process(x[:, 0]).unsqueeze(1)

    @torch.jit.export
    def synthesize(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine.synthesize(x[:, 0], x[:, 1]).unsqueeze(1)

    @torch.jit.export
    def synthesize_voices(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, 2 * voices, n]`` (f0, loudness per voice) -> ``[batch, 1, n]``: every
        voice of every batch row in one room (batch rows get the same mix)."""
        n = x.shape[-1]
        f0 = x[:, 0::2].reshape(-1, n).clamp(0.0, self.sr / 2.0)
        ld = x[:, 1::2].reshape(-1, n).clamp_max(self.poly.max_loudness)
        y = self.poly.synthesize(f0, ld)
        return y.unsqueeze(1).expand(x.shape[0], 1, n).contiguous()

    @torch.jit.export
    def reset(self) -> None:
        self.engine.reset(self.engine.batch)
        self.poly.reset(self.poly.batch)

    @torch.jit.export
    def latency(self) -> int:
        return self.engine.latency()

    def _transpose(self) -> None:
        self.engine.f0_factor = 2.0 ** (self.octave + self.pitch_shift / 12.0)

    @torch.jit.export
    def get_octave(self) -> int:
        return self.octave

    @torch.jit.export
    def set_octave(self, value: int) -> int:
        self.octave = value
        self._transpose()
        return 0

    @torch.jit.export
    def get_pitch_shift(self) -> float:
        return self.pitch_shift

    @torch.jit.export
    def set_pitch_shift(self, value: float) -> int:
        self.pitch_shift = value
        self._transpose()
        return 0

    @torch.jit.export
    def get_loudness(self) -> float:
        return self.loudness

    @torch.jit.export
    def set_loudness(self, value: float) -> int:
        self.loudness = value
        self.engine.gain_db = value
        return 0


def export_nn_tilde(model: Model, path: str | Path, voices: int = 8) -> Path:
    """Write ``model``'s streaming engine as an nn~ TorchScript file (atomically), its
    ``synthesize_voices`` method with ``voices`` voices."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(NNTildeEngine(model.eval(), voices))
    with torch.inference_mode():  # the check nn~ makes when it loads a method
        for name, channels in (("forward", 1), ("synthesize", 2),
                               ("synthesize_voices", 2 * voices)):
            y = getattr(scripted, name)(torch.zeros(1, channels, 8192))
            if tuple(y.shape) != (1, 1, 8192) or y.dtype != torch.float32:
                raise RuntimeError(f"{name} returned {tuple(y.shape)} {y.dtype}")
        scripted.reset()
    with atomic_path(path) as tmp:
        scripted.save(str(tmp))
    return path
