"""Offline rendering of frame-rate controls of any length in bounded memory: the stepped chain
(``models.chain``) over long blocks, with the end of the sequence rendered as one pass renders
it. ``Model.synthesize``, ``transfer`` and ``render`` all run this.

Blocks of a few seconds go through the decoder (its state carried; flushed at the last block)
and the synthesis, whose reverb runs in partitions as long as the impulse response (one FFT
pair a partition, not one a frame). The chain runs ``1 + lookahead`` frames behind its input:
the output drops that delay, and the last frame segment is rendered towards a copy of the last
frame (one-pass rendering holds the last frame), so the concatenated blocks equal the one-pass
rendering (``Model.forward``, the training path) within float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from .chain import ChainStep, model_stepper

if TYPE_CHECKING:
    from .model import Model

BLOCK_FRAMES = 2048  # about 8 s at 250 frames/s


def block_frames(n: int, chunk: int, partition: int, look: int) -> int:
    """The frames of one block: whole reverb partitions, about ``chunk``, and for a short input
    no more than it needs (with the decoder's lookahead and the held last frame)."""
    whole = max(1, round(chunk / partition))
    need = -(-(n + 1 + look) // partition)
    return partition * min(whole, need)


def render_chunks(model: Model, f0_hz: np.ndarray, loudness_db: np.ndarray,
                  chunk_frames: int = BLOCK_FRAMES, seed: int = 0) -> Iterator[np.ndarray]:
    """Yields mono float32 audio, ``chunk_frames * hop`` samples at a time (the last chunk
    shorter), for frame-rate ``f0_hz`` and ``loudness_db`` of any length, decoding in the
    model's runtime."""
    n = int(np.asarray(f0_hz).size)
    f0 = torch.as_tensor(np.asarray(f0_hz, np.float32))[None]
    ld = torch.as_tensor(np.asarray(loudness_db, np.float32))[None]
    was_training = model.training  # (switched only when needed: a walk over every module)
    if was_training:
        model.eval()
    try:
        yield from _render(model, f0, ld, n, chunk_frames, seed)
    finally:
        if was_training:
            model.train()


def _render(model: Model, f0: torch.Tensor, ld: torch.Tensor, n: int, chunk_frames: int,
            seed: int) -> Iterator[np.ndarray]:
    hop = model.config.hop_size
    with torch.inference_mode():
        decoder = model_stepper(model)
        partition = model.synth.partition_frames()
        block = block_frames(n, chunk_frames, partition, int(decoder.lookahead))
        chain = ChainStep(model, seed, partition, decoder)
    out = torch.zeros(1, 0)
    skip, left = (1 + chain.look) * hop, n * hop
    for piece in _blocks(chain, f0, ld, block):
        drop = min(skip, piece.shape[1])
        out = torch.cat([out, piece[:, drop:]], 1)
        skip -= drop
        while out.shape[1] >= chunk_frames * hop and left > 0:
            take = min(chunk_frames * hop, left)
            yield out[0, :take].numpy().astype(np.float32, copy=False)
            out, left = out[:, take:], left - take
    if left > 0:
        yield out[0, :left].numpy().astype(np.float32, copy=False)


def _blocks(chain: ChainStep, f0: torch.Tensor, ld: torch.Tensor, block: int
            ) -> Iterator[torch.Tensor]:
    """The chain's audio, ``block`` frames at a time, through the end of the input's last
    segment (the output's first ``1 + look`` frames are the chain's delay). Each block is
    computed in inference mode; the caller's code between blocks runs in its own mode."""
    n = f0.shape[1]
    n_dec = chain.n_decoder_states
    with torch.inference_mode():
        state = chain.initial_state(1)
    dec_state, synth_state = state[:n_dec], state[n_dec:]
    done = 0                                # frames synthesized
    queue: list[torch.Tensor] = []          # controls not yet synthesized: f0, harm, noise
    for a in range(0, n, block):
        b = min(n, a + block)
        pieces = []
        with torch.inference_mode():
            if b == n:  # the last block flushes the decoder's lookahead
                f0_q, harm, noise, dec_state = chain.controls(
                    f0[:, a:b], ld[:, a:b], torch.tensor([a]), dec_state, flush=True)
            else:  # rests (a closed silence gate) are not decoded
                f0_q, harm, noise, dec_state = chain.sparse_controls(
                    f0[:, a:b], ld[:, a:b], torch.tensor([a]), dec_state)
            new = [f0_q, harm, noise]
            queue = ([torch.cat([q, x], 1) for q, x in zip(queue, new, strict=True)]
                     if queue else new)
            if b == n:
                queue = _end(*queue)
            ready = queue[0].shape[1] if b == n else queue[0].shape[1] // block * block
            for s in range(0, ready, block):
                audio, synth_state = chain.synth(*(q[:, s: s + block] for q in queue),
                                                 torch.tensor([done - chain.look]), synth_state)
                done += audio.shape[1] // chain.hop
                pieces.append(audio)
            queue = [q[:, ready:] for q in queue]
        yield from pieces


def _end(f0: torch.Tensor, harm: torch.Tensor, noise: torch.Tensor) -> list[torch.Tensor]:
    """The last controls and a copy of the last frame without noise: the last segment is
    rendered towards it, as one pass holds the last frame."""
    return [torch.cat([f0, f0[:, -1:]], 1), torch.cat([harm, harm[:, -1:]], 1),
            torch.nn.functional.pad(noise, [0, 0, 0, 1])]
