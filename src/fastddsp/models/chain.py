"""The synthesis chain, stepped: decoder -> silence gate -> harmonic + filtered noise -> reverb,
the next frames at a time, every piece of state explicit. The one implementation of inference:

- the stream (``realtime.stream``) calls it block by block (reverb partitions of one hop);
- the chunked renderer (``models.chunked``: ``Model.synthesize``, ``transfer``, ``render``)
  calls it on blocks of seconds (reverb partitions as long as the impulse response), and ends
  the sequence with ``flush``;
- the chain graph (``realtime.chain_graph``) is this module exported to ONNX.

A call with frames ``[start, start + n)`` of pitch and loudness renders the frame segments
``[start - 1 - look, start + n - 1 - look)``: each segment needs the frame after it (amplitudes
are interpolated between frames; the noise filter reaches one frame ahead), and a decoder with
lookahead ``look`` outputs a frame ``look`` frames later, so the output runs ``(1 + look) * hop``
samples behind the input; segments before frame 0 are silent. The state is the decoder's
(``models.stepped``), then two delay lines of f0 and loudness when the decoder looks ahead
(they wait for its output), then the synthesis' (``dsp.stream_synth``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..dsp.core import SILENCE_DB, decoder_inputs
from ..dsp.stream_synth import complex_partitions, dry_step, initial_synth_state, reverb_step
from ..dsp.synth import gated_controls
from ..errors import UserError
from .stepped import RuntimeStepper, stepper

if TYPE_CHECKING:
    from .model import Model


def model_stepper(model: Model, runtime: str | None = None) -> nn.Module:
    """The stepped decoder of ``model`` in ``runtime`` (default: the model's; an int8 model's
    decoder always runs in ONNX Runtime)."""
    if model.is_quantized or (runtime or model.runtime) == "torch":
        return stepper(model.decoder)
    return stepper(model.decoder, model._runtime_decoder())


class ChainStep(nn.Module):
    """``model``'s chain, stepped. ``partition_frames``: the reverb's partition in frames
    (every call then takes a multiple of it, but a sequence's last); ``decoder``: a stepped
    decoder (default: the model's, in PyTorch); ``graph``: the form that exports to ONNX (no
    data-dependent shapes, no complex tensors; slower in PyTorch)."""

    def __init__(self, model: Model, seed: int = 0, partition_frames: int = 1,
                 decoder: nn.Module | None = None, graph: bool = False):
        super().__init__()
        cfg = model.config
        if cfg.n_noise_bands - 1 > cfg.hop_size:
            raise UserError("stepped synthesis needs hop_size >= n_noise_bands - 1")
        self.hop, self.sr, self.k = cfg.hop_size, float(cfg.sample_rate), cfg.n_harmonics
        self.noise_delay = cfg.n_noise_bands - 1
        self.seed = seed
        self.silence_db = SILENCE_DB  # an attribute: TorchScript reads no float globals
        self.gate_closed, self.gate_open = model.silence_gate_db
        self.max_harmonic_hz = float(cfg.max_harmonic_hz)
        self.register_buffer("noise_floor", model.synth.frozen_noise_floor())
        self.decoder = decoder if decoder is not None else stepper(model.decoder)
        self.look = int(self.decoder.lookahead)
        self.partition = partition_frames * self.hop
        self.graph = graph
        weight = model.synth.ir_partitions(self.partition)   # the graph's real 2x2 form
        self.n_parts = weight.shape[-1]
        # PyTorch multiplies the partitions as complex numbers, stored as (re, im) pairs
        self.register_buffer("reverb_weight", weight if graph else complex_partitions(weight))
        self.n_decoder_states = len(self.decoder.initial_state(1)) + (2 if self.look else 0)
        # whether ``sparse_controls`` decodes only the sounding frames
        self.sparse = isinstance(self.decoder, RuntimeStepper) and self.decoder.past >= 0

    def initial_state(self, batch: int = 1, mix: bool = False) -> list[torch.Tensor]:
        """The state before the first call (silence everywhere). ``mix``: the ``batch``
        voices share one room (one reverb state; see ``step``)."""
        state = self.decoder.initial_state(batch)
        if self.look:
            state += [torch.zeros(batch, self.look),
                      torch.full((batch, self.look), self.silence_db)]
        synth = initial_synth_state(batch, self.k, self.hop, self.noise_delay, self.n_parts,
                                    self.partition)
        if mix:
            synth = synth[:4] + [x[:1] for x in synth[4:]]
        return state + synth

    def state_names(self) -> list[str]:
        return ([f"decoder_{i}" for i in range(self.n_decoder_states)] +
                ["prev_f0", "prev_harmonics", "phase", "noise_tail", "reverb_history",
                 "reverb_previous"])

    def controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, start: torch.Tensor,
                 state: list[torch.Tensor], flush: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Frames of pitch and loudness ``[B, n]`` and the decoder's state -> the controls of
        the frames that are ready (``look`` frames behind; ``flush``: all of them): f0
        ``[B, m]``, harmonic amplitudes ``[B, m, K]``, noise band magnitudes ``[B, m, bands]``,
        and the new decoder state."""
        n_dec = self.n_decoder_states - (2 if self.look else 0)
        x = decoder_inputs(f0_hz, loudness_db, self.gate_open)  # floored, as Model.decode_step
        raw, new_state = self.decoder.step(x, start, state[:n_dec], flush)
        if self.look:  # the decoder's output is `look` frames behind: so are f0 and loudness
            f0_wait = torch.cat([state[n_dec], f0_hz], 1)
            ld_wait = torch.cat([state[n_dec + 1], loudness_db], 1)
            m = raw.shape[1]
            f0_hz, loudness_db = f0_wait[:, :m], ld_wait[:, :m]
            new_state = new_state + [f0_wait[:, m: m + self.look], ld_wait[:, m: m + self.look]]
        harmonics, noise = gated_controls(raw, f0_hz, loudness_db, self.k, self.sr,
                                          self.gate_closed, self.gate_open,
                                          self.max_harmonic_hz, self.noise_floor)
        return f0_hz, harmonics, noise, new_state

    def sparse_controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                        start: torch.Tensor, state: list[torch.Tensor]
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``controls`` (no flush) decoding only the frames whose silence gate is open: a
        closed gate zeroes a frame's amplitudes whatever the decoder says, so the others are
        zeros without it. The same numbers, at a cost that follows the notes (a polyphonic
        engine's idle voices, rests). For a decoder in another runtime with a finite receptive
        field (``RuntimeStepper.step_needed``); any other decodes every frame. Python only."""
        dec = self.decoder
        if not self.sparse or not isinstance(dec, RuntimeStepper):
            return self.controls(f0_hz, loudness_db, start, state)
        n_dec = self.n_decoder_states - (2 if self.look else 0)
        x = decoder_inputs(f0_hz, loudness_db, self.gate_open)
        waiting: list[torch.Tensor] = []
        if self.look:  # the frames that come out are `look` behind, as in ``controls``
            m = f0_hz.shape[1]
            f0_wait = torch.cat([state[n_dec], f0_hz], 1)
            ld_wait = torch.cat([state[n_dec + 1], loudness_db], 1)
            f0_hz, loudness_db = f0_wait[:, :m], ld_wait[:, :m]
            waiting = [f0_wait[:, m:], ld_wait[:, m:]]
        need = loudness_db > self.gate_closed
        raw, dec_state = dec.step_needed(x, start, state[:n_dec], need)
        batch, m = need.shape
        harmonics = f0_hz.new_zeros(batch, m, self.k)
        noise = f0_hz.new_zeros(batch, m, self.noise_delay + 1)
        if raw.shape[0]:
            h, z = gated_controls(raw.unsqueeze(0), f0_hz[need].unsqueeze(0),
                                  loudness_db[need].unsqueeze(0), self.k, self.sr,
                                  self.gate_closed, self.gate_open, self.max_harmonic_hz,
                                  self.noise_floor)
            harmonics[need], noise[need] = h[0], z[0]
        return f0_hz, harmonics, noise, dec_state + waiting

    def synth(self, f0_hz: torch.Tensor, harmonics: torch.Tensor, noise: torch.Tensor,
              start: torch.Tensor, state: list[torch.Tensor], mix: bool = False
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Controls of frames ``[start, start + m)`` (m a multiple of the partition) and the
        synthesis state -> audio ``[B, m * hop]`` of segments ``[start - 1, start + m - 1)``.
        ``mix``: the B voices' dry signals summed into one room -> ``[1, m * hop]``."""
        dry, f0, h, phase, tail = dry_step(
            f0_hz, harmonics, noise, start, state[0], state[1], state[2], state[3], self.hop,
            self.sr, self.seed, self.graph)
        if mix:
            dry = dry.sum(0, keepdim=True)
        out, hist, prev = reverb_step(dry, state[4], state[5], self.reverb_weight, self.graph)
        return out, [f0, h, phase, tail, hist, prev]

    def step(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, start: torch.Tensor,
             state: list[torch.Tensor], mix: bool = False
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Frames ``[start, start + n)`` of pitch and loudness ``[B, n]`` (n a multiple of the
        partition) and the state -> audio ``[B, n * hop]`` and the new state. ``mix``: B
        voices in one room (a state from ``initial_state(B, mix=True)``) -> ``[1, n * hop]``."""
        n_dec = self.n_decoder_states
        f0, harmonics, noise, dec_state = self.controls(f0_hz, loudness_db, start,
                                                        state[:n_dec])
        out, synth_state = self.synth(f0, harmonics, noise, start - self.look, state[n_dec:],
                                      mix)
        return out, dec_state + synth_state

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, start: torch.Tensor,
                state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.step(f0_hz, loudness_db, start, state)
