"""Model configuration and the registry of presets (decoder kinds and sizes)."""

from __future__ import annotations

import dataclasses
import math
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
        problems = [f"{name} must be {what}" for name, what in _field_problems(self)]
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
            if isinstance(d.get("dilations"), list):
                d["dilations"] = tuple(d["dilations"])
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"invalid model config: {e}") from None


# The range of every config field: a model file is checked against these before anything is
# allocated, so a tampered or damaged file cannot ask for gigabytes or minutes of work.
LIMITS: dict[str, tuple[float, float]] = {
    "channels": (1, 2048), "sample_rate": (4000, 192000), "hop_size": (1, 4096),
    "n_harmonics": (1, 1024), "n_noise_bands": (2, 1025), "reverb_seconds": (0.0, 10.0),
    "max_harmonic_hz": (0.0, 1e6), "dilation": (1, 1024), "dilations": (0, 64), "preset": (0, 64),
}


def _in(value: object, kind: type | tuple[type, ...], key: str) -> bool:
    """``value`` is of ``kind`` (never a bool standing for a number) within LIMITS[key]."""
    lo, hi = LIMITS[key]
    return (isinstance(value, kind) and not isinstance(value, bool)
            and math.isfinite(value) and lo <= value <= hi)  # type: ignore[arg-type]


def _field_problems(c: ModelConfig) -> list[tuple[str, str]]:
    def span(key: str, unit: str = "") -> str:
        lo, hi = LIMITS[key]
        return f"within {lo:g}..{hi:g}{unit}"

    number = (int, float)
    checks = [
        ("decoder", "'gru' or 'cnn'", c.decoder in ("gru", "cnn")),
        ("causal", "true or false", isinstance(c.causal, bool)),
        ("noise_floor", "true or false", isinstance(c.noise_floor, bool)),
        ("preset", "a short text", isinstance(c.preset, str) and len(c.preset) <= 64),
        ("dilations", f"a list of {span('dilations')} integers, each {span('dilation')}",
         isinstance(c.dilations, tuple) and len(c.dilations) <= LIMITS["dilations"][1]
         and all(_in(d, int, "dilation") for d in c.dilations)),
        *((key, f"an integer {span(key)}", _in(getattr(c, key), int, key))
          for key in ("channels", "sample_rate", "hop_size", "n_harmonics", "n_noise_bands")),
        ("reverb_seconds", f"a number {span('reverb_seconds', ' s')}",
         _in(c.reverb_seconds, number, "reverb_seconds")),
        ("max_harmonic_hz", f"0 (Nyquist) or a frequency {span('max_harmonic_hz', ' Hz')}",
         _in(c.max_harmonic_hz, number, "max_harmonic_hz")),
    ]
    return [(name, what) for name, what, ok in checks if not ok]


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


# Above 16 kHz (measured on the full-length violin recordings, docs/high-rate.md): harmonic
# structure holds to about 16 kHz and is gone above it, so harmonics stop there (80 of them
# reach 16 kHz from 200 Hz) and the noise bands cover the rest, 129 of them (188 Hz wide at
# 48 kHz, about the 16 kHz models' 125 Hz; the noise FIR then fits a hop of 128 or more).
HIGH_RATE_HARMONIC_HZ = 16000.0
HIGH_RATE_HARMONICS = 80
HIGH_RATE_NOISE_BANDS = 129


def rate_defaults(sample_rate: int, hop: int) -> dict[str, Any]:
    """The synthesis settings a preset takes at ``sample_rate`` (none at 16 kHz and below)."""
    if sample_rate <= 16000:
        return {}
    out: dict[str, Any] = {"n_harmonics": HIGH_RATE_HARMONICS,
                           "max_harmonic_hz": min(HIGH_RATE_HARMONIC_HZ, sample_rate / 2)}
    if hop >= HIGH_RATE_NOISE_BANDS - 1:
        out["n_noise_bands"] = HIGH_RATE_NOISE_BANDS
    return out


def preset_config(name: str, sample_rate: int = 16000, frame_rate: float = 250.0,
                  **overrides: Any) -> ModelConfig:
    """The config of preset ``name`` at ``sample_rate``; hop = round(sample_rate / frame_rate);
    above 16 kHz with ``rate_defaults``' harmonics and noise bands (``overrides`` win)."""
    if name not in PRESETS:
        raise UnknownModelError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    p = PRESETS[name]
    hop = max(1, round(sample_rate / frame_rate))
    settings = {**rate_defaults(int(sample_rate), hop), **overrides}
    return ModelConfig(decoder=p.decoder, channels=p.channels, causal=p.causal,
                       sample_rate=int(sample_rate), hop_size=hop, preset=name, **settings)
