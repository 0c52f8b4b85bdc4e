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
    """Three voices: notes with rests (one starting at frame 0), one silent throughout, one
    playing throughout; vibrato, and loudness that crosses the gate's levels."""
    t = torch.arange(frames, dtype=torch.float32)
    f0 = torch.stack([330 * 2 ** (torch.sin(t / 9) / 24), torch.full_like(t, 200.0),
                      440 + 20 * torch.sin(t / 5)])
    notes = (torch.remainder(t, 300) < 140) | (t < 20)
    loud = torch.stack([torch.where(notes, -30 + 8 * torch.sin(t / 13), torch.tensor(-80.0)),
                        torch.full_like(t, -80.0), -60 + 40 * torch.sin(t / 40)])
    return f0, loud


@pytest.mark.parametrize("name", ["violin-cnn", "violin-tiny", "trumpet-tiny-q"])
def test_sparse_controls_equal_controls(name):
    model = load(name)
    with torch.inference_mode():
        chain = ChainStep(model, decoder=model_stepper(model))
        assert chain.sparse
        decoded = []
        chain.decoder.decode = Counted(chain.decoder.decode, decoded)
        f0, loud = voices_controls(1500)
        n_dec = chain.n_decoder_states
        full = sparse = chain.initial_state(3)[:n_dec]
        for a in range(0, 1500, 250):
            at = torch.tensor([a])
            want = chain.controls(f0[:, a: a + 250], loud[:, a: a + 250], at, full)
            dense_frames = sum(decoded)
            got = chain.sparse_controls(f0[:, a: a + 250], loud[:, a: a + 250], at, sparse)
            sparse_frames = sum(decoded) - dense_frames
            decoded.clear()
            for w, g in zip(want[:3], got[:3], strict=True):
                np.testing.assert_allclose(g.numpy(), w.numpy(), atol=1e-6, rtol=1e-5)
            for w, g in zip(want[3], got[3], strict=True):
                assert torch.equal(w, g)
            full, sparse = want[3], got[3]
            assert sparse_frames < dense_frames  # the silent voice and the rests are skipped
        # the playing voices sound, the silent one does not
        assert float(want[1][0].abs().max()) > 1e-4 and float(want[1][2].abs().max()) > 1e-4
        assert float(want[1][1].abs().max()) == 0.0
