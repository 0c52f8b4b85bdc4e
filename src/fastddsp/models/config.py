"""Model configuration and the registry of presets (decoder kinds and sizes)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ModelFileError, UnknownModelError


@dataclass(frozen=True)
class ModelConfig:
    decoder: str                 # "gru" (DDSP-full) or "cnn" (DDSP-CNN, DDSP-CNN-Tiny)
    channels: int                # GRU/MLP width, or CNN channels
    causal: bool
    sample_rate: int = 16000
    hop_size: int = 64           # samples per control frame: 250 frames/s at 16 kHz
    n_harmonics: int = 60
    n_noise_bands: int = 65
    reverb_seconds: float = 1.0
    preset: str = ""
    dilations: tuple[int, ...] = (1, 3, 9, 1, 3, 9)
    max_harmonic_hz: float = 0.0  # harmonic bandwidth; 0: up to Nyquist
    noise_floor: bool = False    # a learned constant background noise (synth.log_noise_floor)

    def __post_init__(self) -> None:
        problems = []
        if self.decoder not in ("gru", "cnn"):
            problems.append(f"decoder must be 'gru' or 'cnn', not {self.decoder!r}")
        if self.channels < 1 or self.hop_size < 1 or self.n_harmonics < 1:
            problems.append("channels, hop_size and n_harmonics must be positive")
        if self.n_noise_bands < 2:
            problems.append("n_noise_bands must be at least 2")
        if not 4000 <= self.sample_rate <= 192000:
            problems.append(f"sample_rate {self.sample_rate} is outside 4000..192000 Hz")
        if not 0 <= self.max_harmonic_hz < 1e6:
            problems.append("max_harmonic_hz must be 0 (Nyquist) or a positive frequency")
        if not 0 <= self.reverb_seconds <= 10:
            problems.append("reverb_seconds must be within 0..10")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_size

    @property
    def n_outputs(self) -> int:
        return 1 + self.n_harmonics + self.n_noise_bands

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ModelFileError(f"model config has unknown fields: {sorted(unknown)}")
        try:
            d = dict(d)
            if "dilations" in d:
                d["dilations"] = tuple(int(x) for x in d["dilations"])
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"invalid model config: {e}") from None


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    decoder: str
    channels: int
    causal: bool


PRESETS: dict[str, Preset] = {
    p.name: p for p in (
        Preset("full", "DDSP-full: MLPs + GRU 512, ~4.8M parameters", "gru", 512, False),
        Preset("cnn", "DDSP-CNN: dilated CNN, 128 channels, 313,726 parameters", "cnn", 128, False),
        Preset("tiny", "DDSP-CNN-Tiny: causal dilated CNN, 8 channels, 2,446 parameters",
               "cnn", 8, True),
    )
}


def preset_config(name: str, sample_rate: int = 16000, frame_rate: float = 250.0,
                  **overrides: Any) -> ModelConfig:
    """The config of preset ``name`` at ``sample_rate``; hop = round(sample_rate / frame_rate)."""
    if name not in PRESETS:
        raise UnknownModelError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    p = PRESETS[name]
    hop = max(1, round(sample_rate / frame_rate))
    return ModelConfig(decoder=p.decoder, channels=p.channels, causal=p.causal,
                       sample_rate=int(sample_rate), hop_size=hop, preset=name, **overrides)
