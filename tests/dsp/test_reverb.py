import numpy as np
import pytest
import torch

from fastddsp.dsp.reverb import initial_impulse_response, reverb


def test_reverb_equals_direct_convolution_plus_dry():
    x = torch.randn(2, 5000, dtype=torch.float64)
    ir = torch.randn(1600, dtype=torch.float64) * 0.1
    wet_ir = ir.numpy().copy()
    wet_ir[0] = 0.0
    ref = np.stack([x[i].numpy() + np.convolve(x[i].numpy(), wet_ir)[:5000] for i in range(2)])
    assert np.allclose(reverb(x, ir).numpy(), ref, atol=1e-9)
    tail = reverb(x, ir, keep_tail=True)
    assert tail.shape[-1] == 5000 + 1600 - 1
    assert np.allclose(tail[0, :5000].numpy(), ref[0], atol=1e-9)


def test_first_ir_sample_does_not_touch_the_dry_path():
    x = torch.zeros(1, 100)
    x[0, 0] = 1.0
    ir = torch.zeros(50)
    ir[0] = 123.0
    ir[10] = 0.5
    y = reverb(x, ir)
    assert y[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert y[0, 10].item() == pytest.approx(0.5, abs=1e-6)


def test_initial_ir_decays():
    ir = initial_impulse_response(16000, 16000, decay_s=0.25)
    early = ir[:1600].pow(2).mean()
    late = ir[4000:5600].pow(2).mean()  # 0.25 s later: 60 dB down in energy
    assert 10 * torch.log10(early / late).item() > 40


@pytest.mark.parametrize(("n", "ir_len"), [(3000, 700), (3000, 376), (300, 700), (100, 40),
                                           (64000, 16000), (5000, 1)])
def test_reverb_in_blocks_equals_direct_convolution(n, ir_len):
    """One transform or overlap-save blocks (2048 points for a 700-sample IR, so 3000 samples
    take 3 blocks; 3375 = 15^3 would be an odd whole-signal size): the same convolution."""
    from fastddsp.dsp.reverb import block_fft_size, reverb_fft_size, reverb_spectrum
    size = reverb_fft_size(n, ir_len)
    assert size % 2 == 0 and (size >= n + ir_len - 1 or size == block_fft_size(ir_len))
    gen = torch.Generator().manual_seed(n + ir_len)
    x = torch.randn(2, n, dtype=torch.float64, generator=gen)
    ir = torch.randn(2, ir_len, dtype=torch.float64, generator=gen) * 0.1
    wet = ir.numpy().copy()
    wet[:, 0] = 0.0
    ref = np.stack([np.convolve(x[i].numpy(), wet[i]) for i in range(2)])
    ref[:, :n] += x.numpy()
    for spec in (None, reverb_spectrum(ir, size)):
        assert np.allclose(reverb(x, ir, spectrum=spec).numpy(), ref[:, :n], atol=1e-9)
        assert np.allclose(reverb(x, ir, keep_tail=True, spectrum=spec).numpy(), ref,
                           atol=1e-9)
    one = reverb(x[:1].float(), ir[0].float())  # a single IR for the batch, in float32
    assert np.allclose(one.numpy(), x[0].numpy() + np.convolve(x[0].numpy(), np.r_[0.0, ir[
        0, 1:].numpy()])[:n], atol=1e-4)


def test_block_fft_size_is_the_power_of_two_at_least_twice_the_ir():
    from fastddsp.dsp.reverb import block_fft_size, reverb_fft_size
    assert block_fft_size(16000) == 32768 and block_fft_size(16384) == 32768
    assert block_fft_size(16385) == 65536
    assert reverb_fft_size(64000, 16000) == 32768  # 4 s: blocks
    assert reverb_fft_size(8000, 16000) == 24000   # 0.5 s: one transform of 23,999 samples


def test_synth_spectrum_cache_follows_the_impulse_response():
    from fastddsp import Model
    m = Model.from_preset("tiny")
    f0, ld = np.full(200, 330.0), np.full(200, -20.0)
    before = m.synthesize(f0, ld)
    with torch.no_grad():
        m.synth.reverb_ir.mul_(3.0)  # in place: same storage, new version
    after = m.synthesize(f0, ld)
    with torch.enable_grad():  # the uncached path
        ref = m(torch.from_numpy(f0).float()[None], torch.from_numpy(ld).float()[None], seed=0)
    assert not np.allclose(before, after)
    assert np.allclose(after, ref.detach()[0].numpy(), atol=1e-6)


def test_band_noise_splits_white_noise_into_disjoint_bands():
    from fastddsp.dsp.reverb import band_noise
    bands = band_noise(8000, 16000, n_bands=8, low_hz=100.0, seed=3)
    noise = torch.randn(8000, generator=torch.Generator().manual_seed(3))
    assert bands.shape == (8, 8000)
    assert torch.allclose(bands.sum(0), noise, atol=1e-5)
    spectra = torch.fft.rfft(bands).abs()
    freqs = torch.fft.rfftfreq(8000, 1 / 16000)
    peak = freqs[spectra.argmax(-1)]
    assert peak[0] < 100 and torch.all(peak[1:] > peak[:-1])  # low to high, no overlap
    assert ((spectra > 1e-3).sum(0) <= 1).all()


def test_decaying_noise_ir_has_the_band_decay_times():
    from fastddsp.dsp.reverb import band_noise, decaying_noise_ir
    sr = 16000
    bands = band_noise(sr, sr, n_bands=2, low_hz=2000.0)
    rt60 = torch.tensor([0.2, 0.8])
    for b in range(2):  # one band at a time: its energy falls 60 dB per rt60
        gain = torch.full((2,), -30.0)
        gain[b] = 0.0
        ir = decaying_noise_ir(bands, gain, torch.log(rt60), sr)
        e = [ir[i: i + 800].pow(2).mean() / bands[b, i: i + 800].pow(2).mean()
             for i in (0, 1600)]
        drop_db = 10 * torch.log10(e[0] / e[1]).item()
        assert drop_db == pytest.approx(60 * 0.1 / rt60[b].item(), rel=0.05)


@pytest.mark.parametrize("frames", [1, 3, 7])
def test_partitioned_reverb_in_complex_form_equals_the_graph_form(frames):
    """``reverb_step`` in PyTorch reads the partitions' spectra as complex numbers
    (``complex_partitions``, viewed in place); the graph multiplies the real 2x2 blocks:
    the same output and state, over consecutive calls."""
    from fastddsp.dsp.stream_synth import complex_partitions, reverb_partitions, reverb_step
    gen = torch.Generator().manual_seed(7)
    ir = initial_impulse_response(1000, 16000)
    part = 64
    weight = reverb_partitions(ir, part)
    n_parts = weight.shape[-1]
    states = {g: [torch.zeros(2, n_parts - 1, part + 1, 2), torch.zeros(2, part)]
              for g in (True, False)}
    for _ in range(4):
        dry = torch.randn(2, frames * part, generator=gen)
        outs = {}
        for graph in (True, False):
            w = weight if graph else complex_partitions(weight)
            outs[graph], *states[graph] = reverb_step(dry, *states[graph], w, graph)
        assert torch.allclose(outs[True], outs[False], atol=1e-5)
        assert torch.allclose(states[True][0], states[False][0], atol=1e-5)
        assert torch.equal(states[True][1], states[False][1])
    assert outs[True].abs().max() > 0.5
