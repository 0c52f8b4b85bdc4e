"""The thesis' decoders: scaled f0 and loudness ``[B, F, 2]`` -> raw controls ``[B, F, n_out]``.

- ``GRUDecoder`` (DDSP-full): an MLP per input, a GRU over their concatenation, an output MLP.
- ``CNNDecoder`` (DDSP-CNN, DDSP-CNN-Tiny): an input conv and residual dilated conv blocks.

The CNN's normalisation is BatchNorm: at inference it is a fixed per-channel affine map, so the
output at frame t depends only on the receptive field (causal when ``causal``), it can be folded
into the convolutions, and it quantizes cleanly. It never uses statistics of the sequence being
decoded at inference time.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(n_in: int, hidden: int, n_layers: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LayerNorm(hidden),
                   nn.LeakyReLU()]
    return nn.Sequential(*layers)


class GRUDecoder(nn.Module):
    def __init__(self, n_out: int, hidden: int = 512, mlp_layers: int = 3):
        super().__init__()
        self.f0_mlp = mlp(1, hidden, mlp_layers)
        self.loudness_mlp = mlp(1, hidden, mlp_layers)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.out_mlp = mlp(3 * hidden, hidden, mlp_layers)
        self.proj = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[B, F, 2]`` -> (``[B, F, n_out]``, GRU state ``[1, B, hidden]``)."""
        a = self.f0_mlp(x[..., :1])
        b = self.loudness_mlp(x[..., 1:])
        h, state = self.gru(torch.cat([a, b], -1), state)
        return self.proj(self.out_mlp(torch.cat([a, b, h], -1))), state

    @property
    def receptive_field(self) -> tuple[int, int]:
        return (-1, 0)  # unbounded past, no lookahead


class ConvBlock(nn.Module):
    """``x + norm(conv(relu6(x)))``, a dilated conv without bias."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
        h = nn.functional.pad(nn.functional.relu6(x), pad)
        return x + self.norm(self.conv(h))


class CNNDecoder(nn.Module):
    def __init__(self, n_out: int, channels: int = 128, kernel: int = 3,
                 dilations: tuple[int, ...] = (1, 3, 9, 1, 3, 9), causal: bool = False):
        super().__init__()
        self.kernel = kernel
        self.dilations = tuple(dilations)
        self.causal = causal
        self.inp = nn.Conv1d(2, channels, kernel, bias=False)
        self.inp_norm = nn.BatchNorm1d(channels)
        self.blocks = nn.ModuleList(ConvBlock(channels, kernel, d) for d in self.dilations)
        self.proj = nn.Linear(channels, n_out)

    def _pad(self, dilation: int) -> tuple[int, int]:
        total = (self.kernel - 1) * dilation
        return (total, 0) if self.causal else (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        h = nn.functional.pad(x.transpose(1, 2), self._pad(1))
        h = self.inp_norm(self.inp(h))
        for block, d in zip(self.blocks, self.dilations, strict=True):
            h = block(h, self._pad(d))
        return self.proj(h.transpose(1, 2)), None

    @property
    def receptive_field(self) -> tuple[int, int]:
        """(frames of past, frames of lookahead) that one output frame depends on."""
        total = sum((self.kernel - 1) * d for d in (1, *self.dilations))
        if self.causal:
            return (total, 0)
        look = sum(self._pad(d)[1] for d in (1, *self.dilations))
        return (total - look, look)
