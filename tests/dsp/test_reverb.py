import numpy as np
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
    assert y[0, 0].item() == 1.0 and y[0, 10].item() == 0.5


def test_initial_ir_decays():
    ir = initial_impulse_response(16000, 16000, decay_s=0.25)
    early = ir[:1600].pow(2).mean()
    late = ir[4000:5600].pow(2).mean()  # 0.25 s later: 60 dB down in energy
    assert 10 * torch.log10(early / late).item() > 40
