import numpy as np
import pytest

from fastddsp import Model
from fastddsp.dsp.noise import indexed_noise
from fastddsp.models.chunked import render_chunks


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
    ref = m.synthesize(f0, ld, seed=3)
    chunks = list(render_chunks(m, f0, ld, chunk_frames=chunk, seed=3))
    assert [c.size for c in chunks[:-1]] == [chunk * 64] * (len(chunks) - 1)
    out = np.concatenate(chunks)
    assert out.shape == ref.shape
    assert np.max(np.abs(out - ref)) < 2e-6
