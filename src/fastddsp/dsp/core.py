"""Pure tensor helpers shared by the DSP blocks: scalings, unit conversions, resampling of
frame-rate controls to audio rate, FFT sizes. No state, no I/O."""

from __future__ import annotations

import torch


def exp_sigmoid(x: torch.Tensor, max_value: float = 2.0, threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's output nonlinearity: ``max_value * sigmoid(x) ** ln(10) + threshold``, computed
    as ``exp(-ln(10) * softplus(-x))`` (the same value; a non-integer power is slower)."""
    return max_value * torch.exp(torch.nn.functional.softplus(-x) * -2.302585092994046) \
        + threshold


def hz_to_midi(f0_hz: torch.Tensor) -> torch.Tensor:
    """Frequency in Hz to (fractional) MIDI note number; 0 Hz and below map to 0."""
    safe = torch.clamp(f0_hz, min=1e-5)
    midi = 12.0 * torch.log2(safe / 440.0) + 69.0
    return torch.where(f0_hz > 0, midi, torch.zeros_like(midi))


def midi_to_hz(midi: torch.Tensor) -> torch.Tensor:
    return 440.0 * torch.pow(2.0, (midi - 69.0) / 12.0)


SILENCE_DB = -80.0  # loudness of silence: the loudness feature's floor, the decoders' input floor


def scale_f0(f0_hz: torch.Tensor) -> torch.Tensor:
    """Decoder input scaling of pitch: midi / 127."""
    return hz_to_midi(f0_hz) / 127.0


def scale_loudness(loudness_db: torch.Tensor, floor_db: float = SILENCE_DB) -> torch.Tensor:
    """Decoder input scaling of loudness: dB / 80 + 1, floored at -80 dB, not clipped above."""
    return torch.clamp(loudness_db, min=floor_db) / -floor_db + 1.0


def decoder_inputs(f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                   min_loudness_db: float = SILENCE_DB) -> torch.Tensor:
    """``[..., F]`` pitch and loudness -> the decoders' input ``[..., F, 2]``. At inference
    ``min_loudness_db`` is the model's quietest training loudness (the silence gate's open
    level): the decoder is never driven below the range it learned."""
    return torch.stack([scale_f0(f0_hz), scale_loudness(loudness_db.clamp(min=min_loudness_db))],
                       dim=-1)


def silence_gate(loudness_db: torch.Tensor, closed_db: float, open_db: float) -> torch.Tensor:
    """A gain in [0, 1] per frame: 0 at or below ``closed_db``, 1 from ``open_db`` up, linear
    in dB between. Applied to the synthesis controls so that input silence stays silent even
    where a decoder never saw such quiet frames in training."""
    return ((loudness_db - closed_db) / (open_db - closed_db)).clamp(0.0, 1.0)


def hold_last(frames: torch.Tensor) -> torch.Tensor:
    """``frames[:, 1:]`` with the last frame repeated: the right end of each frame segment."""
    return torch.cat([frames[:, 1:], frames[:, -1:]], dim=1)


def interp_weights(hop: int, dtype: torch.dtype = torch.float32,
                   device: torch.device | None = None) -> torch.Tensor:
    """Weights ``n / hop`` for n in [0, hop): position of each sample inside its frame segment."""
    return torch.arange(hop, dtype=dtype, device=device) / hop


def upsample_linear(frames: torch.Tensor, hop: int,
                    right: torch.Tensor | None = None) -> torch.Tensor:
    """Frame-rate ``[batch, frames, ...]`` to audio rate ``[batch, frames * hop, ...]``.

    Frame ``i`` sits at sample ``i * hop`` and values are linearly interpolated towards frame
    ``i + 1``; the last frame is held (DDSP's ``add_endpoint=True`` convention). ``right`` gives
    the value after the last frame instead (used by streaming to join blocks seamlessly).
    """
    nxt = hold_last(frames) if right is None else torch.cat([frames[:, 1:], right], dim=1)
    w = interp_weights(hop, frames.dtype, frames.device)
    w = w.view([1, 1, hop] + [1] * (frames.dim() - 2))
    a = frames.unsqueeze(2)
    b = nxt.unsqueeze(2)
    out = a + (b - a) * w
    return out.reshape([frames.shape[0], frames.shape[1] * hop] + list(frames.shape[2:]))


def resample_frames(values: torch.Tensor, n_out: int) -> torch.Tensor:
    """Linearly resample a ``[batch, frames]`` series to ``n_out`` frames (endpoints aligned)."""
    if values.shape[1] == n_out:
        return values
    x = values.unsqueeze(1)
    return torch.nn.functional.interpolate(x, size=n_out, mode="linear", align_corners=True)[:, 0]


def next_fast_len(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= n: FFT sizes that pocketfft handles fast."""
    best = 1
    while best < n:
        best *= 2
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def fft_convolve(signal: torch.Tensor, kernel: torch.Tensor,
                 n_out: int | None = None) -> torch.Tensor:
    """Linear convolution along the last axis via the FFT, cropped to ``n_out`` samples
    (default: the full length ``len(signal) + len(kernel) - 1``). Shapes broadcast."""
    n_full = signal.shape[-1] + kernel.shape[-1] - 1
    n_fft = next_fast_len(n_full)
    spec = torch.fft.rfft(signal, n_fft) * torch.fft.rfft(kernel, n_fft)
    out = torch.fft.irfft(spec, n_fft)
    return out[..., : (n_full if n_out is None else n_out)]
