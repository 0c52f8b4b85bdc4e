import numpy as np
import pytest
import torch

import fastddsp
from fastddsp.dsp.reverb import initial_impulse_response
from fastddsp.training.room import attach_room, bake_room


def test_a_baked_room_becomes_the_models_impulse_response(tmp_path):
    model = fastddsp.Model.from_preset("tiny")
    room, err = attach_room(model.synth)
    assert err is None and not model.synth.reverb_ir.requires_grad
    with torch.no_grad():
        room.log_rt60.fill_(np.log(0.5))
        expected = room().clone()
    f0, ld = torch.full((1, 100), 220.0), torch.full((1, 100), -20.0)
    before = model(f0, ld, seed=1, reverb_ir=room())
    bake_room(model.synth, room)
    assert model.synth.reverb_ir.requires_grad
    assert torch.equal(model.synth.reverb_ir.detach(), expected)
    assert torch.allclose(model(f0, ld, seed=1), before, atol=1e-6)
    loaded = fastddsp.load(model.save(tmp_path / "m.fddsp"))
    assert torch.equal(loaded.synth.reverb_ir.detach(), expected)


def test_a_baked_room_is_fitted_back_from_its_impulse_response():
    model = fastddsp.Model.from_preset("tiny")
    room, _ = attach_room(model.synth)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # a room far from the default start: gains and RT60s per band
        gain = np.log(0.02) + torch.randn(16, generator=gen)
        room.log_gain.copy_(gain)
        room.log_rt60.copy_(torch.log(0.1 + 1.4 * torch.rand(16, generator=gen)))
        rt60 = room.log_rt60.exp().clone()
    bake_room(model.synth, room)
    baked = model.synth.reverb_ir.detach().clone()
    refitted, err = attach_room(model.synth, fit=True)
    assert err < 0.002
    refit = refitted().detach()
    assert ((refit - baked).pow(2).sum() / baked.pow(2).sum()).sqrt() == pytest.approx(err)
    # and so do the decay times, to 1 %, in all bands but the quietest
    rel = (refitted.log_rt60.exp() / rt60 - 1).abs()
    quietest = int(gain.argmin())
    assert bool((rel < 0.01).all()) or int(rel.argmax()) == quietest
    assert (rel < 0.01).sum() >= 15
    # an impulse response no room made (other noise) fits badly, and says so
    model.synth.reverb_ir.data.copy_(initial_impulse_response(baked.numel(), 16000, seed=7))
    assert attach_room(model.synth, fit=True)[1] > 0.5
