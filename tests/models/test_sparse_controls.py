"""Decoding only the frames that sound (``ChainStep.sparse_controls``) gives the same controls
as decoding every frame, and decodes fewer frames."""

import numpy as np
import pytest
import torch

from fastddsp import load
from fastddsp.models.chain import ChainStep, model_stepper
from fastddsp.models.stepped import needed_runs


def test_needed_runs_finds_each_rows_runs_and_joins_close_ones():
    need = torch.tensor([[0, 1, 1, 0, 0, 0, 1, 0, 1, 1],
                         [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                         [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    assert needed_runs(need, 2) == [(0, 1, 3), (0, 6, 10), (2, 0, 10)]
    assert needed_runs(need, 3) == [(0, 1, 3), (0, 6, 10), (2, 0, 10)]
    assert needed_runs(need, 4) == [(0, 1, 10), (2, 0, 10)]
    assert needed_runs(need, 1) == [(0, 1, 3), (0, 6, 7), (0, 8, 10), (2, 0, 10)]


class Counted(torch.nn.Module):
    """A decoder that notes how many frames it decodes (rows times frames)."""

    def __init__(self, decode: torch.nn.Module, frames: list[int]):
        super().__init__()
        self.decode, self.frames = decode, frames

    def forward(self, x: torch.Tensor):
        self.frames.append(x.shape[0] * x.shape[1])
        return self.decode(x)


def voices_controls(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three voices: short notes with rests (one starting at frame 0), one silent throughout,
    one whose notes swell and fade through the gate's levels; vibrato."""
    t = torch.arange(frames, dtype=torch.float32)
    f0 = torch.stack([330 * 2 ** (torch.sin(t / 9) / 24), torch.full_like(t, 200.0),
                      440 + 20 * torch.sin(t / 5)])
    notes = (torch.remainder(t, 300) < 100) | (t < 20)
    swells = torch.remainder(t, 400) < 130
    silence = torch.tensor(-80.0)
    loud = torch.stack([torch.where(notes, -30 + 8 * torch.sin(t / 13), silence),
                        torch.full_like(t, -80.0),
                        torch.where(swells, -60 + 40 * torch.sin(torch.remainder(t, 400) / 41),
                                    silence)])
    return f0, loud


@pytest.mark.parametrize("name", ["violin-cnn", "violin-tiny", "trumpet-tiny-q"])
@pytest.mark.parametrize("block", [1000, 4])
def test_sparse_controls_equal_controls(name, block):
    """Blocks of 1000 frames decode each run of sounding frames on its own; a stream's blocks
    of 4 frames decode the voices that sound in one call."""
    model = load(name)
    frames = 3000 if block > 100 else 400
    with torch.inference_mode():
        chain = ChainStep(model, decoder=model_stepper(model))
        assert chain.sparse
        decoded = []
        chain.decoder.decode = Counted(chain.decoder.decode, decoded)
        f0, loud = voices_controls(frames)
        n_dec = chain.n_decoder_states
        full = sparse = chain.initial_state(3)[:n_dec]
        calls, loudest = [], torch.zeros(3)
        for a in range(0, frames, block):
            at = torch.tensor([a])
            want = chain.controls(f0[:, a: a + block], loud[:, a: a + block], at, full)
            dense_frames = sum(decoded)
            decoded.clear()
            got = chain.sparse_controls(f0[:, a: a + block], loud[:, a: a + block], at, sparse)
            calls.append(len(decoded))
            sparse_frames = sum(decoded)
            decoded.clear()
            for w, g in zip(want[:3], got[:3], strict=True):
                np.testing.assert_allclose(g.numpy(), w.numpy(), atol=1e-6, rtol=1e-5)
            for w, g in zip(want[3], got[3], strict=True):
                assert torch.equal(w, g)
            full, sparse = want[3], got[3]
            loudest = torch.maximum(loudest, want[1].abs().amax((1, 2)))
            assert sparse_frames < dense_frames  # the silent voice and the rests are skipped
        assert max(calls) > 1 if block > 100 else max(calls) == 1
        # the playing voices sound, the silent one does not
        assert loudest[0] > 1e-4 and loudest[2] > 1e-4 and loudest[1] == 0.0
