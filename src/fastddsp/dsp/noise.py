"""Filtered noise: per-frame band magnitudes -> linear-phase FIR per frame -> white noise
filtered frame by frame (FFT) and overlap-added."""

from __future__ import annotations

import torch

from .core import exp_sigmoid, fft_convolve


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
    """Uniform white noise in [-1, 1) (the values of ``2 * rand - 1``, in one pass)."""
    return torch.empty(shape, device=device).uniform_(-1.0, 1.0, generator=generator)


def _hash31(x: torch.Tensor) -> torch.Tensor:
    """An integer hash of int64 values in [0, 2^31) (products stay below 2^63: no overflow)."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0x7FFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & 0x7FFFFFFF
    return x ^ (x >> 16)


def indexed_noise(seed: int, start: int, n: int, batch: int = 1) -> torch.Tensor:
    """White noise in [-1, 1) ``[batch, n]`` for samples ``[start, start + n)`` of the stream
    ``seed``: a counter-based generator (a hash of seed, row and sample index), so any range
    can be drawn on its own and always gets the same samples. Chunked, streaming and one-pass
    rendering agree, and the same integer ops run in TorchScript and ONNX graphs."""
    idx = torch.arange(start, start + n, dtype=torch.int64)
    return hashed_noise(idx, seed, batch)


def hashed_noise(index: torch.Tensor, seed: int, batch: int = 1) -> torch.Tensor:
    """``indexed_noise`` for given int64 sample indices ``[n]`` -> ``[batch, n]``."""
    mask = 0x7FFFFFFF
    rows = torch.arange(batch, dtype=torch.int64, device=index.device).unsqueeze(1)
    base = _hash31((rows + seed * 65537) * 257 + 1 & mask)
    x = _hash31((index.unsqueeze(0) + base) & mask)
    return (x & 0xFFFFFF).to(torch.float32) * (2.0 / 16777216.0) - 1.0


def hashed_noise_rows(index: torch.Tensor, rows: torch.Tensor, seed: int) -> torch.Tensor:
    """``hashed_noise`` for given int64 sample indices ``[S, n]``, each line from its own row
    of the stream (``rows`` ``[S]``): the same values ``hashed_noise`` gives those rows."""
    mask = 0x7FFFFFFF
    base = _hash31((rows.to(torch.int64).unsqueeze(1) + seed * 65537) * 257 + 1 & mask)
    x = _hash31((index + base) & mask)
    return (x & 0xFFFFFF).to(torch.float32) * (2.0 / 16777216.0) - 1.0


def sounding_noise_segments(magnitudes: torch.Tensor, index: torch.Tensor, seed: int,
                            hop: int) -> torch.Tensor:
    """``noise_segments(magnitudes, hashed_noise(index, seed, batch), hop)`` computed only for
    the frames whose magnitudes are not all zero (the others' segments are zeros): noise costs
    what the sounding frames need (rests, a polyphonic engine's idle voices)."""
    batch, n_frames, n_bands = magnitudes.shape[0], magnitudes.shape[1], magnitudes.shape[2]
    flat = magnitudes.reshape(batch * n_frames, n_bands)
    rows = (flat != 0).any(-1).nonzero().squeeze(1)
    length = hop + 2 * (n_bands - 1) - 1
    out = torch.zeros(batch * n_frames, length, dtype=magnitudes.dtype,
                      device=magnitudes.device)
    if rows.numel() * 10 >= flat.shape[0] * 9:  # nearly all sound: at once is cheaper
        out = noise_segments(magnitudes, hashed_noise(index, seed, batch), hop).reshape(
            batch * n_frames, length)
    elif rows.numel() > 0:
        frame = torch.remainder(rows, n_frames)
        samples = index.view(n_frames, hop)[frame]                 # [S, hop]
        white = hashed_noise_rows(samples, torch.div(rows, n_frames, rounding_mode="floor"),
                                  seed)
        out[rows] = fft_convolve(white, noise_impulse_responses(flat[rows]))
    return out.view(batch, n_frames, length)


def noise_context(hop: int, n_bands: int) -> tuple[int, int]:
    """Frames of context (before, after) a range of frames needs for its filtered noise to
    equal one-pass rendering: the FIR's overlap-add reaches into neighbouring frames."""
    ir = 2 * (n_bands - 1)
    delay = ir // 2
    return -(-(hop + ir - 2 - delay) // hop), (hop - 1 + delay) // hop


def noise_segments(magnitudes: torch.Tensor, noise: torch.Tensor, hop: int) -> torch.Tensor:
    """Each frame's filtered noise before overlap-add: ``noise`` ``[batch, frames * hop]``,
    frame f's samples ``[f * hop, (f + 1) * hop)`` filtered by frame f's FIR ->
    ``[batch, frames, hop + ir_size - 1]`` (full convolution, by FFT)."""
    batch, n_frames = magnitudes.shape[0], magnitudes.shape[1]
    frames = noise.reshape(batch, n_frames, hop)
    return fft_convolve(frames, noise_impulse_responses(magnitudes))


def overlap_add(segments: torch.Tensor, hop: int) -> torch.Tensor:
    """``[batch, frames, length]`` segments starting every ``hop`` samples -> their sum
    ``[batch, (frames - 1) * hop + length]``."""
    batch, n_frames, length = segments.shape[0], segments.shape[1], segments.shape[2]
    n_chunks = (length + hop - 1) // hop
    out = torch.zeros(batch, n_frames + n_chunks - 1, hop, dtype=segments.dtype,
                      device=segments.device)
    for j in range(n_chunks):  # the segments' j-th hop of samples, into frames j, j + 1, ...
        width = min(hop, length - j * hop)
        out[:, j: j + n_frames, :width] += segments[:, :, j * hop: j * hop + width]
    return out.reshape(batch, -1)[:, : (n_frames - 1) * hop + length]


def filtered_noise(magnitudes: torch.Tensor, noise: torch.Tensor, hop: int) -> torch.Tensor:
    """Filter ``noise`` ``[batch, frames * hop]`` with frame f's FIR on samples
    ``[f * hop, (f + 1) * hop)``; overlap-add; delay-compensated so output aligns with input."""
    n_frames = magnitudes.shape[1]
    delay = magnitudes.shape[-1] - 1  # the linear-phase FIR's delay: ir_size // 2
    out = overlap_add(noise_segments(magnitudes, noise, hop), hop)
    return out[:, delay: delay + n_frames * hop]
