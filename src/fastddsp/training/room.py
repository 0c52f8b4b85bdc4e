"""The room model of training: a learnable decaying room that generates the reverb's impulse
response while a model trains, baked into an ordinary IR when training ends (the model file and
every runtime are unchanged). A free IR trained with Adam on little audio does not decay; two
numbers per band (gain, RT60) cannot learn a tail that never decays."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..dsp.reverb import band_noise, decaying_noise_ir
from ..dsp.synth import Synth


class DecayingReverb(nn.Module):
    """A learnable room of per-band gains and decay times (``decaying_noise_ir``); training
    may use it in place of a free IR, which is then baked from it (``bake_room``)."""

    def __init__(self, n_samples: int, sample_rate: float, n_bands: int = 16,
                 gain: float = 0.02, rt60_s: float = 0.25, seed: int = 0):
        super().__init__()
        self.sample_rate = sample_rate
        self.register_buffer("bands", band_noise(n_samples, sample_rate, n_bands, seed=seed),
                             persistent=False)
        self.log_gain = nn.Parameter(torch.full((n_bands,), math.log(gain)))
        self.log_rt60 = nn.Parameter(torch.full((n_bands,), math.log(rt60_s)))

    def forward(self) -> torch.Tensor:
        return decaying_noise_ir(self.bands, self.log_gain, self.log_rt60, self.sample_rate)


def fit_decaying_noise_ir(bands: torch.Tensor, ir: torch.Tensor, sample_rate: float,
                          log_gain: torch.Tensor, log_rt60: torch.Tensor,
                          iterations: int = 2000, tolerance: float = 1e-3
                          ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The per-band log-gains and log-RT60s whose ``decaying_noise_ir`` is closest to ``ir``
    (least squares; Adam from ``log_gain``, ``log_rt60``, seconds on a CPU, stopping once the
    relative RMS error is under ``tolerance``) and that error. An IR baked from such a room
    (same ``bands``) is recovered to about 0.1 %; a free IR, which no two numbers per band
    describe, fits badly (an error near 1)."""
    gain = log_gain.detach().clone().requires_grad_(True)
    rt60 = log_rt60.detach().clone().requires_grad_(True)
    target = ir.detach()
    energy = target.pow(2).sum().clamp_min(1e-20)
    opt = torch.optim.Adam([gain, rt60], lr=0.05)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.998)
    with torch.enable_grad():
        for _ in range(iterations):
            opt.zero_grad()
            loss = (decaying_noise_ir(bands, gain, rt60, sample_rate) - target).pow(2).sum()
            if loss.item() < tolerance ** 2 * energy.item():
                break
            (loss / energy).backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        err = (decaying_noise_ir(bands, gain, rt60, sample_rate) - target).pow(2).sum()
    return gain.detach(), rt60.detach(), float((err / energy).sqrt())


def attach_room(synth: Synth, n_bands: int = 16, fit: bool = False
                ) -> tuple[DecayingReverb | None, float | None]:
    """A room for ``synth``'s IR (None without an IR), whose IR is then frozen until
    ``bake_room``. A new room starts small and short; with ``fit`` it starts as the room
    closest to the present IR, and the fit's relative error is returned with it."""
    if synth.reverb_ir is None:
        return None, None
    room = DecayingReverb(synth.reverb_ir.shape[-1], synth.sample_rate, n_bands)
    synth.reverb_ir.requires_grad_(False)
    if not fit:
        return room, None
    gain, rt60, err = fit_decaying_noise_ir(room.bands, synth.reverb_ir, synth.sample_rate,
                                            room.log_gain, room.log_rt60)
    with torch.no_grad():
        room.log_gain.copy_(gain)
        room.log_rt60.copy_(rt60)
    return room, err


def bake_room(synth: Synth, room: DecayingReverb | None) -> None:
    """Store the room's IR as ``synth``'s IR (what the model file holds)."""
    if room is not None and synth.reverb_ir is not None:
        with torch.no_grad():
            synth.reverb_ir.copy_(room())
        synth.reverb_ir.requires_grad_(True)
