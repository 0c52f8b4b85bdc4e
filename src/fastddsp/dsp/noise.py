"""Filtered noise: per-frame band magnitudes -> linear-phase FIR per frame -> white noise
filtered frame by frame (FFT) and overlap-added."""

from __future__ import annotations

import torch

from .core import exp_sigmoid, next_fast_len


def noise_magnitudes(raw: torch.Tensor) -> torch.Tensor:
    """Raw decoder outputs -> band magnitudes, ``exp_sigmoid(raw - 5)`` (starts quiet)."""
    return exp_sigmoid(raw - 5.0)


def noise_impulse_responses(magnitudes: torch.Tensor) -> torch.Tensor:
    """``[..., n_bands]`` magnitudes, sampled uniformly from 0 Hz to Nyquist, -> linear-phase FIRs
    ``[..., 2 * (n_bands - 1)]`` by frequency sampling: zero-phase inverse FFT, centred, Hann
    windowed. The filter's delay is ``n_bands - 1`` samples."""
    size = 2 * (magnitudes.shape[-1] - 1)
    ir = torch.fft.irfft(magnitudes.to(torch.complex64), n=size)
    ir = torch.roll(ir, size // 2, dims=-1)
    window = torch.hann_window(size, periodic=True, dtype=ir.dtype, device=ir.device)
    return ir * window


def white_noise(shape: tuple[int, ...], generator: torch.Generator | None = None,
                device=None) -> torch.Tensor:
    """Uniform white noise in [-1, 1)."""
    return torch.rand(shape, generator=generator, device=device) * 2.0 - 1.0


NOISE_BLOCK = 4096


def indexed_noise(seed: int, start: int, n: int, batch: int = 1) -> torch.Tensor:
    """White noise ``[batch, n]`` for samples ``[start, start + n)`` of the stream ``seed``:
    any range can be drawn on its own and always gets the same samples (counter-based: block k
    of 4096 samples comes from a generator seeded with (seed, row, k)), so chunked and one-pass
    rendering agree."""
    first, last = start // NOISE_BLOCK, (start + n - 1) // NOISE_BLOCK
    rows = []
    for r in range(batch):
        blocks = []
        for k in range(first, last + 1):
            gen = torch.Generator().manual_seed((seed * 1_000_003 + r) * 1_000_033 + k)
            blocks.append(torch.rand(NOISE_BLOCK, generator=gen))
        flat = torch.cat(blocks) if blocks else torch.zeros(0)
        off = start - first * NOISE_BLOCK
        rows.append(flat[off: off + n])
    return torch.stack(rows) * 2.0 - 1.0


def noise_context(hop: int, n_bands: int) -> tuple[int, int]:
    """Frames of context (before, after) a range of frames needs for its filtered noise to
    equal one-pass rendering: the FIR's overlap-add reaches into neighbouring frames."""
    ir = 2 * (n_bands - 1)
    delay = ir // 2
    return -(-(hop + ir - 2 - delay) // hop), (hop - 1 + delay) // hop


def filtered_noise(magnitudes: torch.Tensor, noise: torch.Tensor, hop: int) -> torch.Tensor:
    """Filter ``noise`` ``[batch, frames * hop]`` with frame f's FIR on samples
    ``[f * hop, (f + 1) * hop)``; overlap-add; delay-compensated so output aligns with input."""
    batch, n_frames, _ = magnitudes.shape
    ir = noise_impulse_responses(magnitudes)
    ir_size = ir.shape[-1]
    seg_len = hop + ir_size - 1
    n_chunks = -(-seg_len // hop)
    n_fft = next_fast_len(seg_len)
    frames = noise.reshape(batch, n_frames, hop)
    spec = torch.fft.rfft(frames, n_fft) * torch.fft.rfft(ir, n_fft)
    seg = torch.fft.irfft(spec, n_fft)
    if n_fft < n_chunks * hop:
        seg = torch.nn.functional.pad(seg, (0, n_chunks * hop - n_fft))
    seg = seg[..., : n_chunks * hop].reshape(batch, n_frames, n_chunks, hop)
    out = seg[:, :, 0].reshape(batch, n_frames * hop)
    out = torch.nn.functional.pad(out, (0, (n_chunks - 1) * hop))
    for j in range(1, n_chunks):
        part = seg[:, :, j].reshape(batch, n_frames * hop)
        out = out + torch.nn.functional.pad(part, (j * hop, (n_chunks - 1 - j) * hop))
    delay = ir_size // 2
    return out[:, delay: delay + n_frames * hop]
