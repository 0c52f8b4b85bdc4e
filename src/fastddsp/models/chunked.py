"""Rendering long signals in chunks with bounded memory, equal to one-pass rendering.

Frame-rate inputs of any length are decoded and synthesized chunk by chunk. Each chunk carries
exactly the state one pass would have: decoder context (CNN receptive field, or the GRU state),
oscillator phase and the next frame's controls, the neighbouring frames the noise filter's
overlap-add reaches, and the reverb tail. The noise is the indexable stream of the seed, so
the concatenated chunks equal ``Model.synthesize`` (within float rounding; tested).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..dsp.harmonic import harmonic_synth
from ..dsp.noise import filtered_noise, indexed_noise, noise_context
from ..dsp.reverb import reverb, reverb_fft_size
from .model import Model


class _Decoder:
    """Decodes frames ``[start, end)`` of the whole input in increasing order, exactly."""

    def __init__(self, model: Model, f0: torch.Tensor, ld: torch.Tensor):
        self.model, self.f0, self.ld = model, f0, ld
        self.gru = model.config.decoder == "gru"
        self.state = None
        self.done = 0  # GRU: frames decoded so far

    def raw(self, start: int, end: int) -> torch.Tensor:
        m, n = self.model, self.f0.shape[1]
        if self.gru:  # recurrent: strictly in order, carrying the state
            if start != self.done:
                raise RuntimeError(f"GRU frames must be decoded in order ({start} != {self.done})")
            out, self.state = m.decode_step(self.f0[:, start:end], self.ld[:, start:end],
                                            self.state)
            self.done = end
            return out
        past, ahead = m.decoder.receptive_field
        lo, hi = max(0, start - past), min(n, end + ahead)
        out = m.decode(self.f0[:, lo:hi], self.ld[:, lo:hi])
        return out[:, start - lo: end - lo]


def render_chunks(model: Model, f0_hz: np.ndarray, loudness_db: np.ndarray,
                  chunk_frames: int = 2500, seed: int = 0) -> Iterator[np.ndarray]:
    """Yields mono float32 audio, ``chunk_frames * hop`` samples at a time (the last chunk
    shorter), for frame-rate ``f0_hz`` and ``loudness_db`` of any length."""
    cfg = model.config
    hop, sr = cfg.hop_size, cfg.sample_rate
    n = int(np.asarray(f0_hz).size)
    f0 = torch.as_tensor(np.asarray(f0_hz, np.float32))[None]
    ld = torch.as_tensor(np.asarray(loudness_db, np.float32))[None]
    before, after = noise_context(hop, cfg.n_noise_bands)
    dec = _Decoder(model, f0, ld)
    ir = model.synth.reverb_ir
    tail = torch.zeros(1, 0)
    phase = torch.zeros(1, dtype=torch.float64)
    # decoded raw outputs of frames [buf_start, buf_start + buf.shape[1])
    buf = torch.zeros(1, 0, cfg.n_outputs)
    buf_start = 0
    model.eval()
    with torch.inference_mode():
        for a in range(0, n, chunk_frames):
            b = min(n, a + chunk_frames)
            lo, hi = max(0, a - before), min(n, b + max(after, 1))
            have = buf_start + buf.shape[1]
            if hi > have:
                buf = torch.cat([buf, dec.raw(have, hi)], 1)
            buf = buf[:, lo - buf_start:]
            buf_start = lo
            ctrl = model.controls_from_raw(buf[:, : hi - lo], f0[:, lo:hi], ld[:, lo:hi])
            i, j = a - lo, b - lo
            right = b < n
            harm, phase = harmonic_synth(
                ctrl.f0_hz[:, i:j], ctrl.harmonics[:, i:j], hop, sr, initial_phase=phase,
                right_f0=ctrl.f0_hz[:, j: j + 1] if right else None,
                right_amplitudes=ctrl.harmonics[:, j: j + 1] if right else None)
            noise = indexed_noise(seed, lo * hop, (hi - lo) * hop)
            filt = filtered_noise(ctrl.noise, noise, hop)[:, i * hop: j * hop]
            dry = harm + filt
            if ir is None:
                out = dry
            else:
                spectrum = model.synth.ir_spectrum(reverb_fft_size(dry.shape[1], ir.shape[-1]))
                full = reverb(dry, ir, keep_tail=True, spectrum=spectrum)  # dry + whole wet
                m = max(full.shape[1], tail.shape[1])
                acc = torch.nn.functional.pad(full, (0, m - full.shape[1]))
                acc = acc + torch.nn.functional.pad(tail, (0, m - tail.shape[1]))
                out = acc[:, : dry.shape[1]]
                tail = acc[:, dry.shape[1]:]
            yield out[0].numpy().astype(np.float32, copy=False)

