import numpy as np
import pytest
import torch

import fastddsp
from fastddsp.features import Features
from fastddsp.features.adjust import adjust_features, adjust_frames, hold_voiced
from fastddsp.features.pitch import clean_f0


def melody(low_midi: float, high_midi: float, frames: int = 500) -> Features:
    midi = np.linspace(low_midi, high_midi, frames)
    f0 = (440.0 * 2 ** ((midi - 69) / 12)).astype(np.float32)
    return Features(f0, np.full(frames, -25.0, np.float32), np.ones(frames, np.float32), 250.0)


@pytest.fixture(scope="module")
def violin_stats():
    stats = fastddsp.load("violin-tiny").stats
    q = stats["pitch_midi"]["quantiles"]
    assert 54 < np.interp(1, np.linspace(0, 100, len(q)), q) < 56  # the range this test uses
    return stats


def test_a_melody_that_fits_the_instrument_keeps_its_octave(violin_stats):
    # a female voice around 330 Hz (E4): a violin plays it where it is
    _, adj = adjust_features(melody(60, 69), violin_stats)
    assert adj.octaves == 0


def test_a_bass_melody_moves_only_as_far_as_it_must(violin_stats):
    # MIDI 40-47 (E2-B2): one octave up still leaves it under the violin's G3, two fit
    out, adj = adjust_features(melody(40, 47), violin_stats)
    assert adj.octaves == 2
    assert np.allclose(out.f0_hz, melody(40, 47).f0_hz * 4, rtol=1e-5)
    _, adj = adjust_features(melody(48, 56), violin_stats)  # one octave is enough
    assert adj.octaves == 1
    _, adj = adjust_features(melody(96, 100), violin_stats)  # a whistle comes down
    assert adj.octaves == -2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"octave": 99}, "octave must be auto or within -4..4"),
    ({"octave": -5}, "octave must be auto or within -4..4"),
    ({"pitch_shift": 200.0}, "pitch shift must be within ±24 semitones"),
    ({"pitch_shift": float("nan")}, "pitch shift must be within"),
    ({"loudness": 500.0}, "loudness must be auto, none or within ±60 dB"),
])
def test_adjustments_beyond_the_valid_ranges_are_refused(violin_stats, kwargs, message):
    with pytest.raises(fastddsp.UserError, match=message):
        adjust_features(melody(60, 69), violin_stats, **kwargs)


def test_the_stream_and_the_offline_path_share_one_adjustment():
    f0 = torch.tensor([[200.0, 210.0, 220.0, 230.0]])
    ld = torch.tensor([[-80.0, -30.0, -20.0, -79.0]])
    voiced = torch.tensor([[True, False, True, True]])
    f0_out, ld_out = adjust_frames(f0, ld, voiced, 2.0, -5.0, 20.0)
    assert f0_out.tolist() == [[400.0, 420.0, 440.0, 460.0]]
    # silence stays silent; the unvoiced frame is lowered 20 dB; none falls under -80
    assert ld_out.tolist() == [[-80.0, -55.0, -25.0, -80.0]]
    held = hold_voiced(f0, voiced, torch.tensor([150.0]))
    assert held.tolist() == [[200.0, 200.0, 220.0, 230.0]]
    held = hold_voiced(f0, torch.tensor([[False, True, False, False]]), torch.tensor([150.0]))
    assert held.tolist() == [[150.0, 210.0, 210.0, 210.0]]
    # clean_f0 is hold_voiced on arrays: offline, leading frames take the first voiced f0
    conf = np.array([0.1, 0.9, 0.2, 0.1], np.float32)
    assert clean_f0(f0[0].numpy(), conf, 0.5).tolist() == [210.0, 210.0, 210.0, 210.0]
    assert clean_f0(f0[0].numpy(), conf, 0.5, causal=True).tolist() == [200.0, 210.0, 210.0,
                                                                         210.0]
