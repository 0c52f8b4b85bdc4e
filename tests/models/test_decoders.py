import pytest
import torch

from fastddsp import Model
from fastddsp.models.config import preset_config


@pytest.mark.parametrize(("preset", "count"), [("full", 4_801_150), ("cnn", 313_726),
                                                ("tiny", 2_446)])
def test_exact_parameter_counts(preset, count):
    assert Model.from_preset(preset).decoder_parameters == count


def test_cnn_count_formula_holds_for_other_widths():
    from fastddsp.models.decoders import CNNDecoder
    for ch in (4, 16, 64):
        dec = CNNDecoder(126, channels=ch)
        assert sum(p.numel() for p in dec.parameters()) == 18 * ch * ch + 146 * ch + 126


@pytest.mark.parametrize("preset", ["full", "cnn", "tiny"])
def test_decoder_output_shape(preset):
    m = Model.from_preset(preset)
    raw = m.decode(torch.full((2, 37), 300.0), torch.full((2, 37), -30.0))
    assert raw.shape == (2, 37, 126)


def _perturbed_outputs(model: Model, t: int):
    f0 = torch.full((1, 200), 300.0) + torch.randn(1, 200)
    ld = torch.full((1, 200), -30.0) + torch.randn(1, 200)
    base = model.decode(f0, ld)
    f0b, ldb = f0.clone(), ld.clone()
    f0b[:, t + 1:] += 50.0
    ldb[:, t + 1:] -= 20.0
    return base, model.decode(f0b, ldb)


def test_tiny_is_causal():
    m = Model.from_preset("tiny").eval()
    # give the norms non-trivial statistics first, as training would
    m.train()
    for _ in range(3):
        m.decode(torch.rand(4, 200) * 800 + 50, torch.rand(4, 200) * -60)
    m.eval()
    t = 120
    base, pert = _perturbed_outputs(m, t)
    assert torch.equal(base[:, : t + 1], pert[:, : t + 1])
    assert not torch.allclose(base[:, t + 1:], pert[:, t + 1:])
    assert m.decoder.receptive_field == (54, 0)


def test_cnn_is_not_causal_and_sees_27_frames_ahead():
    m = Model.from_preset("cnn").eval()
    t = 100
    base, pert = _perturbed_outputs(m, t)
    assert not torch.allclose(base[:, t], pert[:, t])
    assert torch.equal(base[:, : t + 1 - 27], pert[:, : t + 1 - 27])
    assert m.decoder.receptive_field == (27, 27)


@pytest.mark.parametrize("preset", ["full", "cnn", "tiny"])
def test_gradients_reach_every_parameter(preset):
    m = Model.from_preset(preset).train()
    f0 = 200 + 300 * torch.rand(2, 30)
    ld = -60 + 50 * torch.rand(2, 30)
    audio = m(f0, ld)
    (audio.pow(2).mean() + audio.abs().mean()).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_models_at_other_sample_rates(sr):
    m = Model.from_preset("tiny", sample_rate=sr)
    assert m.config.hop_size == round(sr / 250)
    audio = m.synthesize([440.0] * 100, [-20.0] * 100)
    assert audio.shape == (100 * m.config.hop_size,)
    assert audio.dtype.name == "float32"


def test_config_validation():
    with pytest.raises(ValueError):
        preset_config("tiny", sample_rate=100)


def test_high_rate_presets_take_the_measured_harmonics_and_noise_bands():
    """Above 16 kHz: harmonics to 16 kHz (80 of them), 129 noise bands to Nyquist (measured on
    the violin recordings: docs/high-rate.md); 16 kHz presets are the thesis' (60, 65)."""
    low, high = preset_config("tiny", 16000), preset_config("tiny", 48000)
    assert (low.n_harmonics, low.max_harmonic_hz, low.n_noise_bands) == (60, 0.0, 65)
    assert (high.n_harmonics, high.max_harmonic_hz, high.n_noise_bands) == (80, 16000.0, 129)
    assert high.hop_size == 192
    assert preset_config("tiny", 48000, n_harmonics=100).n_harmonics == 100  # overrides win
    assert preset_config("tiny", 22050, frame_rate=250.0).n_noise_bands == 65  # hop 88 < 128


@pytest.mark.parametrize("dilation", [1, 3, 9])
@pytest.mark.parametrize("frames", [1, 4, 64])
def test_a_dilated_conv_as_one_product_equals_conv1d(dilation, frames):
    """A stream's few-frame steps run each dilated conv as one matrix product of the stacked
    shifted inputs (``dilated_conv``): the same as ``conv1d``."""
    from fastddsp.models.stepped import dilated_conv, tap_weight
    gen = torch.Generator().manual_seed(dilation * 100 + frames)
    w, b = torch.randn(16, 8, 3, generator=gen), torch.randn(16, generator=gen)
    x = torch.randn(2, 8, frames + 2 * dilation, generator=gen)
    ref = torch.nn.functional.conv1d(x, w, b, dilation=dilation)
    out = dilated_conv(x, tap_weight(w), b, 3, dilation)
    assert out.shape == ref.shape == (2, 16, frames)
    assert torch.allclose(out, ref, atol=1e-5)
