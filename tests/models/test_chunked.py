import numpy as np
import pytest
import torch

from fastddsp import Model, load
from fastddsp.dsp.noise import indexed_noise
from fastddsp.models.chunked import render_chunks
from fastddsp.models.model import one_pass


def test_indexed_noise_is_random_access():
    whole = indexed_noise(5, 0, 20000)
    part = indexed_noise(5, 4000, 9000)
    assert np.array_equal(part.numpy(), whole[:, 4000:13000].numpy())
    assert not np.array_equal(indexed_noise(6, 0, 100).numpy(), whole[:, :100].numpy())
    assert whole.min() >= -1 and whole.max() < 1 and abs(whole.mean().item()) < 0.02


@pytest.mark.parametrize("preset", ["tiny", "cnn", "full"])
@pytest.mark.parametrize("chunk", [1, 37, 500, 5000])
def test_chunked_rendering_equals_one_pass(preset, chunk):
    if preset == "full" and chunk == 1:
        pytest.skip("slow and covered by 37")
    m = Model.from_preset(preset, seed=1)
    n = 150 if chunk == 1 else 1234  # one frame per chunk: a short input keeps it quick
    t = np.arange(n)
    f0 = 250 + 150 * np.sin(t / 40)  # crosses many harmonics' Nyquist limits
    ld = -35 + 15 * np.cos(t / 25)
    ref = one_pass(m, f0, ld, seed=3)  # the training path: one pass, not stepped
    chunks = list(render_chunks(m, f0, ld, chunk_frames=chunk, seed=3))
    assert [c.size for c in chunks[:-1]] == [chunk * 64] * (len(chunks) - 1)
    out = np.concatenate(chunks)
    assert out.shape == ref.shape
    # within float rounding and the sine recurrence's error: one pass makes its sines by the
    # recurrence (max error 3e-5 per unit of amplitude), pieces of a few frames exactly
    assert np.max(np.abs(out - ref)) < 1e-5


@pytest.mark.parametrize("rests", [False, True])
@pytest.mark.parametrize("name", ["violin-cnn", "trumpet-full", "violin-tiny"])
def test_every_runtime_renders_the_same(name, rests):
    """The stepped decoder in PyTorch and the decoder in ONNX Runtime (re-run over its
    receptive field, or carrying the GRU state) give the same audio, over block edges. With
    rests, ONNX Runtime's CNNs decode only frames whose silence gate is open
    (``ChainStep.sparse_controls``) where PyTorch decodes every frame: the same audio, rests
    inside blocks and across their edges."""
    m = load(name)
    t = np.arange(3000)
    f0 = 300 * 2 ** (np.sin(t / 30) / 3)
    ld = -30 + 12 * np.sin(t / 17)
    if rests:
        ld = np.where(np.remainder(t, 800) < 450, ld, -80.0)
    chunks = {}
    for runtime in ("onnxruntime", "torch"):
        m.runtime = runtime
        chunks[runtime] = np.concatenate(list(render_chunks(m, f0, ld, chunk_frames=700)))
    np.testing.assert_allclose(chunks["onnxruntime"], chunks["torch"], atol=2e-5)
    assert np.abs(chunks["torch"]).max() > 0.01


def test_the_caller_keeps_its_grad_mode_between_chunks():
    """Inference mode covers the rendering of each block, not the caller's code between
    chunks (a suspended generator must not leave it switched on)."""
    m = Model.from_preset("tiny")
    f0, ld = np.full(3000, 300.0), np.full(3000, -30.0)
    modes = [(torch.is_grad_enabled(), torch.is_inference_mode_enabled())
             for _ in render_chunks(m, f0, ld, chunk_frames=300)]
    assert len(modes) == 10 and set(modes) == {(True, False)}

