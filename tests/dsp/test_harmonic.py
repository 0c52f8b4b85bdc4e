import math

import numpy as np
import pytest
import torch

from fastddsp.dsp.core import upsample_linear
from fastddsp.dsp.harmonic import harmonic_amplitudes, harmonic_synth, oscillator_phase
from tests.conftest import peak_hz

SR = 16000
HOP = 64


def single_harmonic(f0: torch.Tensor, amp: torch.Tensor | float = 1.0, n_harm: int = 1):
    amps = torch.zeros(f0.shape[0], f0.shape[1], n_harm)
    amps[..., 0] = amp
    return amps


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_440hz_control_peaks_at_440hz(sr):
    hop = round(sr / 250)
    n_frames = 1000  # 4 s
    f0 = torch.full((1, n_frames), 440.0)
    audio, _ = harmonic_synth(f0, single_harmonic(f0), hop, sr)
    assert peak_hz(audio[0].numpy(), sr) == pytest.approx(440.0, abs=1.0)


def test_harmonics_land_on_integer_multiples():
    f0 = torch.full((1, 500), 220.0)
    amps = torch.zeros(1, 500, 3)
    amps[..., 2] = 1.0  # third harmonic only
    audio, _ = harmonic_synth(f0, amps, HOP, SR)
    assert peak_hz(audio[0].numpy(), SR) == pytest.approx(660.0, abs=1.0)


def test_7khz_f0_has_no_energy_above_nyquist():
    n_frames = 500
    f0 = torch.full((1, n_frames), 7000.0)
    raw_amp = torch.zeros(1, n_frames)
    raw_dist = torch.zeros(1, n_frames, 60)  # all 60 harmonics equally loud before the guard
    amps = harmonic_amplitudes(raw_amp, raw_dist, f0, SR)
    # only the fundamental is audible, and it carries the whole amplitude
    assert torch.count_nonzero(amps[0, 0]).item() == 1
    overall = 2 * 0.5 ** math.log(10) + 1e-7
    assert amps[0, 0, 0].item() == pytest.approx(overall, rel=1e-5)
    audio, _ = harmonic_synth(f0, amps, HOP, SR)
    spec = np.abs(np.fft.rfft(audio[0].numpy() * np.hanning(audio.shape[1]))) ** 2
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / SR)
    near = np.abs(freqs - 7000) < 20
    assert spec[~near].sum() / spec.sum() < 1e-8  # an alias of harmonic 2 would sit at 2 kHz


def test_max_hz_is_the_harmonic_bandwidth():
    n_frames = 500
    f0 = torch.full((1, n_frames), 440.0)
    raw_amp, raw_dist = torch.zeros(1, n_frames), torch.zeros(1, n_frames, 60)
    full = harmonic_amplitudes(raw_amp, raw_dist, f0, SR)
    amps = harmonic_amplitudes(raw_amp, raw_dist, f0, SR, max_hz=2000.0)
    assert torch.count_nonzero(amps[0, 0]).item() == 4  # 440, 880, 1320, 1760 Hz
    torch.testing.assert_close(amps.sum(-1), full.sum(-1))  # the overall amplitude is kept
    audio, _ = harmonic_synth(f0, amps, HOP, SR)
    spec = np.abs(np.fft.rfft(audio[0].numpy() * np.hanning(audio.shape[1]))) ** 2
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / SR)
    assert spec[freqs > 1800].sum() / spec.sum() < 1e-8
    assert spec[(freqs > 1750) & (freqs < 1770)].sum() / spec.sum() > 0.1
    # 0, and anything at or above Nyquist, is Nyquist
    for no_limit in (0.0, SR / 2, 1e5):
        assert torch.equal(harmonic_amplitudes(raw_amp, raw_dist, f0, SR, no_limit), full)


def test_glide_across_nyquist_never_aliases():
    # f0 rises 3.5 -> 4.5 kHz: harmonic 2 crosses 8 kHz inside frame segments.
    n_frames = 400
    f0 = torch.linspace(3500.0, 4500.0, n_frames)[None]
    amps = torch.zeros(1, n_frames, 2)
    amps[..., 0] = 0.5
    amps[..., 1] = 0.5
    amps = amps * (f0[..., None] * torch.tensor([1.0, 2.0]) < SR / 2)
    audio, _ = harmonic_synth(f0, amps, HOP, SR)
    # the exact alias-free signal: harmonic 2 only while it is below Nyquist, per sample
    phase, _ = oscillator_phase(f0, HOP, SR)
    f0_up = upsample_linear(f0, HOP)
    a = torch.from_numpy(np.interp(np.arange(n_frames * HOP) / HOP, np.arange(n_frames),
                                   amps[0, :, 1].numpy())).float()
    ref = 0.5 * torch.sin(phase[0]) + a * torch.sin(2 * phase[0]) * (2 * f0_up[0] < SR / 2)
    assert torch.allclose(audio[0], ref, atol=1e-4)


def test_phase_is_continuous_across_frames_with_changing_f0():
    n_frames = 200
    f0 = torch.where(torch.arange(n_frames) % 2 == 0, 200.0, 300.0)[None]
    audio, _ = harmonic_synth(f0, single_harmonic(f0), HOP, SR)
    # reference: phase = integral of the linearly interpolated f0, in float64
    f0_up = np.interp(np.arange(n_frames * HOP) / HOP, np.arange(n_frames), f0[0].numpy())
    phase = np.concatenate([[0.0], np.cumsum(2 * np.pi * f0_up / SR)[:-1]])
    assert np.max(np.abs(audio[0].numpy() - np.sin(phase))) < 1e-4
    step = np.max(np.abs(np.diff(audio[0].numpy())))
    assert step <= 2 * np.pi * 300 / SR + 1e-4


def test_amplitude_is_continuous_across_frames():
    n_frames = 200
    f0 = torch.full((1, n_frames), 100.0)
    amp = torch.where(torch.arange(n_frames) % 2 == 0, 0.2, 1.0)[None]
    audio, _ = harmonic_synth(f0, single_harmonic(f0, amp), HOP, SR)
    # a jump of 0.8 at a frame boundary would show; a linear ramp moves at most 0.8/64 per sample
    bound = 0.8 / HOP + 2 * np.pi * 100 / SR
    assert np.max(np.abs(np.diff(audio[0].numpy()))) <= bound + 1e-5


def test_blocks_with_phase_state_equal_one_pass():
    n_frames = 300
    gen = torch.Generator().manual_seed(1)
    f0 = 200 + 100 * torch.rand(1, n_frames, generator=gen)
    amps = torch.rand(1, n_frames, 20, generator=gen)
    whole, end = harmonic_synth(f0, amps, HOP, SR)
    a, mid = harmonic_synth(f0[:, :100], amps[:, :100], HOP, SR,
                            right_f0=f0[:, 100:101], right_amplitudes=amps[:, 100:101])
    b, end2 = harmonic_synth(f0[:, 100:], amps[:, 100:], HOP, SR, initial_phase=mid)
    assert torch.allclose(torch.cat([a, b], 1), whole, atol=2e-5)
    assert end2.item() == pytest.approx(end.item(), abs=1e-6)


def test_zero_f0_is_silent():
    f0 = torch.zeros(1, 50)
    amps = harmonic_amplitudes(torch.zeros(1, 50), torch.zeros(1, 50, 60), f0, SR)
    audio, _ = harmonic_synth(f0, amps, HOP, SR)
    assert audio.abs().max().item() == 0.0


def test_gradients_flow_to_amplitudes():
    f0 = torch.full((2, 20), 330.0)
    raw = torch.zeros(2, 20, 61, requires_grad=True)
    amps = harmonic_amplitudes(raw[..., 0], raw[..., 1:], f0, SR)
    audio, _ = harmonic_synth(f0, amps, HOP, SR)
    (audio ** 2).mean().backward()
    assert raw.grad is not None and torch.count_nonzero(raw.grad[..., :25]) > 0


def test_chebyshev_sines_match_direct_sines_within_stated_tolerance():
    from fastddsp.dsp.harmonic import harmonic_signs, signed_harmonic_sines
    phase = torch.rand(1, 100_000, generator=torch.Generator().manual_seed(2)) * 2 * math.pi
    fast = signed_harmonic_sines(phase, 60).double()
    k = torch.arange(1, 61, dtype=torch.float64).view(60, 1, 1)
    signs = harmonic_signs(60, torch.float64).view(60, 1, 1)
    assert signs.flatten()[:6].tolist() == [1.0, 1.0, -1.0, -1.0, 1.0, 1.0]
    exact = signs * torch.sin(k * phase.double())
    assert (fast - exact).abs().max().item() < 1e-4


def performance_f0(n_frames: int, kind: str) -> torch.Tensor:
    """Real-style pitch curves at 250 frames/s: vibrato of ±50 cents at 6 Hz, slides of an
    octave in 100 ms, a new note every 100 ms."""
    t = torch.arange(n_frames) / 250.0
    if kind == "vibrato":
        return 440.0 * 2 ** (0.5 / 12 * torch.sin(2 * math.pi * 6 * t))[None]
    if kind == "slides":  # up and down an octave, each in 100 ms, between 300 ms holds
        pos = torch.remainder(t, 0.8)
        up = torch.clamp(pos / 0.1, 0, 1) - torch.clamp((pos - 0.4) / 0.1, 0, 1)
        return (220.0 * 2 ** up)[None]
    notes = torch.tensor([196.0, 262.0, 330.0, 523.0, 659.0, 880.0, 247.0, 1047.0])
    return notes[(t / 0.1).long() % notes.numel()][None]


@pytest.mark.parametrize("kind", ["vibrato", "slides", "notes"])
def test_real_style_controls_equal_the_per_sample_reference(kind):
    """The Nyquist guard touches only the segments where a harmonic crosses Nyquist; the
    result equals masking every sample (``trim=False``, what the exported graphs run) and the
    direct sum of sines with the per-sample guard."""
    n_frames = 500
    f0 = performance_f0(n_frames, kind)
    gen = torch.Generator().manual_seed(3)
    raw = torch.randn(1, n_frames, 61, generator=gen)
    amps = harmonic_amplitudes(raw[..., 0], raw[..., 1:], f0, SR)
    fast, end = harmonic_synth(f0, amps, HOP, SR)
    full, end_full = harmonic_synth(f0, amps, HOP, SR, trim=False)
    assert torch.allclose(fast, full, atol=1e-6) and end.item() == end_full.item()
    phase, _ = oscillator_phase(f0, HOP, SR)
    f0_up = upsample_linear(f0, HOP)[0].double()
    k = torch.arange(1, 61, dtype=torch.float64)
    a = upsample_linear(amps, HOP)[0].double()                        # [samples, K]
    audible = (f0_up[:, None] * k < SR / 2) & (f0_up[:, None] > 0)
    ref = (a * torch.sin(phase[0].double()[:, None] * k) * audible).sum(-1)
    assert (fast[0].double() - ref).abs().max().item() < 1e-4


def test_rests_are_skipped_with_the_same_numbers():
    """Segments silent at both ends are not computed (the sparse path); everything else is
    what computing every segment gives, next-block controls and Nyquist crossings included."""
    torch.manual_seed(0)
    batch, frames, k, hop = 3, 40, 30, 64
    f0 = 200 + 4000 * torch.rand(batch, frames)          # some harmonics cross Nyquist
    amps = torch.rand(batch, frames, k)
    amps[0, 5:20] = 0.0                                   # a rest
    amps[1] = 0.0                                         # an idle voice
    amps[2, :, 10:] = 0.0                                 # fewer harmonics
    right_f0, right_amps = f0[:, -1:] * 1.1, amps[:, -1:] * 0.5
    phase0 = torch.rand(batch, dtype=torch.float64)
    sparse, end_s = harmonic_synth(f0, amps, hop, 16000, phase0, right_f0, right_amps)
    dense, end_d = harmonic_synth(f0, amps, hop, 16000, phase0, right_f0, right_amps,
                                  trim=False)
    assert torch.allclose(sparse, dense, atol=1e-5) and torch.equal(end_s, end_d)
    assert sparse[1].abs().max() == 0 and sparse[0, 6 * hop: 19 * hop].abs().max() == 0
    assert dense.abs().max() > 1.0


def test_a_long_block_is_computed_in_pieces_with_the_same_numbers():
    """At 48 kHz a block's sines are computed a piece at a time (cache-sized); the pieces
    join seamlessly: the same as computing them at once."""
    torch.manual_seed(1)
    frames, k, hop = 1200, 100, 192
    f0 = 150 + 2000 * torch.rand(1, frames)            # up to 2150 Hz x 100: past Nyquist
    amps = torch.rand(1, frames, k)
    pieces, _ = harmonic_synth(f0, amps, hop, 48000)
    whole, _ = harmonic_synth(f0, amps, hop, 48000, trim=False)
    assert 2097152 // (hop * k) < frames                 # more than one piece
    assert torch.allclose(pieces, whole, atol=2e-5)


def test_a_long_block_with_rests_is_computed_in_pieces_with_the_same_numbers():
    torch.manual_seed(2)
    frames, k, hop = 1200, 100, 192
    f0 = 150 + 2000 * torch.rand(2, frames)
    amps = torch.rand(2, frames, k)
    amps[1] = 0.0                                        # an idle voice: the sparse path
    pieces, _ = harmonic_synth(f0, amps, hop, 48000)
    whole, _ = harmonic_synth(f0, amps, hop, 48000, trim=False)
    assert 2097152 // (hop * k) < frames                 # more than one piece
    assert torch.allclose(pieces, whole, atol=2e-5) and pieces[1].abs().max() == 0


def test_each_segment_is_computed_up_to_its_own_highest_harmonic_with_the_same_numbers():
    """Segments go in order of their harmonic count, in pieces of similar counts: a block of
    low notes with many harmonics and high ones with few gives what computing every harmonic
    everywhere gives."""
    torch.manual_seed(4)
    frames, k, hop = 1500, 80, 192
    f0 = 100 + 3000 * torch.rand(2, frames)
    amps = harmonic_amplitudes(torch.randn(2, frames), torch.randn(2, frames, k), f0, 48000,
                               max_hz=12000.0)           # 4 to 80 harmonics per frame
    amps[1, 300:700] = 0.0
    counts = (amps != 0).sum(-1)
    assert counts.max() == k and counts[counts > 0].min() < 6
    assert 2097152 // (hop * k) < frames                 # more than one piece
    sparse, _ = harmonic_synth(f0, amps, hop, 48000)
    dense, _ = harmonic_synth(f0, amps, hop, 48000, trim=False)
    assert torch.allclose(sparse, dense, atol=2e-5) and dense.abs().max() > 0.1


@pytest.mark.parametrize("kind", ["vibrato", "slides", "notes"])
def test_few_frames_take_direct_sines_with_the_same_numbers(kind):
    """Pieces of up to ``DIRECT_SAMPLES`` samples (a stream's step) take ``sin(k * phase)``
    in one op instead of the recurrence: both equal the float64 sum of sines, and each
    other within the recurrence's error."""
    from fastddsp.dsp.core import hold_last
    from fastddsp.dsp.harmonic import DIRECT_SAMPLES, _sparse, highest_harmonic, segment_phases
    n_frames = 24                                    # 24 x 64 samples: under DIRECT_SAMPLES
    assert n_frames * HOP <= DIRECT_SAMPLES
    f0 = performance_f0(n_frames, kind) * 2          # up to 2 kHz: Nyquist crossings
    raw = torch.randn(1, n_frames, 61, generator=torch.Generator().manual_seed(5))
    amps = harmonic_amplitudes(raw[..., 0], raw[..., 1:], f0, SR)
    start, nxt, _ = segment_phases(f0, HOP, SR)
    top = highest_harmonic(amps)
    args = (start, f0, nxt, amps, hold_last(amps), torch.maximum(top, hold_last(top)), HOP, SR)
    direct = _sparse(*args)
    recurrence = _sparse(*args, direct_samples=0)
    assert torch.allclose(direct, harmonic_synth(f0, amps, HOP, SR)[0])  # what synth runs
    phase, _ = oscillator_phase(f0, HOP, SR)
    f0_up = upsample_linear(f0, HOP)[0].double()
    k = torch.arange(1, 61, dtype=torch.float64)
    a = upsample_linear(amps, HOP)[0].double()
    audible = (f0_up[:, None] * k < SR / 2) & (f0_up[:, None] > 0)
    ref = (a * torch.sin(phase[0].double()[:, None] * k) * audible).sum(-1)
    assert (direct[0].double() - ref).abs().max().item() < 2e-5
    assert (recurrence[0].double() - ref).abs().max().item() < 1e-4
    assert (direct - recurrence).abs().max().item() < 1e-4
    assert ref.abs().max().item() > 0.1
