"""The streaming engine: equal to the offline rendering of the same causal analysis, for every
block size; phase continuity; latency; bad input."""

import numpy as np
import pytest
import torch

from fastddsp.errors import UserError
from fastddsp.models import Model, load
from fastddsp.realtime.stream import (
    Stream,
    StreamEngine,
    causal_features,
    measure_latency,
    offline_reference,
    onset,
)

SR = 16000


def melody(seconds: float = 2.0) -> np.ndarray:
    """A gliding, swelling tone with a pause and breath noise: exercises pitch, voicing,
    loudness and the silence gate."""
    t = np.arange(int(seconds * SR)) / SR
    f = 300 * 2 ** (0.6 * np.sin(2 * np.pi * 0.8 * t))
    ph = 2 * np.pi * np.cumsum(f) / SR
    env = 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t)) * ((t > 0.2) & ((t < 0.9) | (t > 1.1)))
    rng = np.random.default_rng(1)
    x = env * (np.sin(ph) + 0.4 * np.sin(2 * ph)) + 0.003 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def run_blocks(stream: Stream, x: np.ndarray, size: int) -> np.ndarray:
    out = [stream.process(x[i: i + size]) for i in range(0, x.size, size)]
    assert all(o.size == b for o, b in zip(out, [min(size, x.size - i)
                                              for i in range(0, x.size, size)], strict=True))
    return np.concatenate(out)


def assert_matches_offline(model: Model, x: np.ndarray, out: np.ndarray, stream: Stream,
                           **adjust) -> None:
    ref = offline_reference(model, x, tracker=stream.tracker, **adjust)
    d = stream.control_latency
    n = x.size - d - 4 * model.config.hop_size   # the offline render holds its last frame
    assert np.abs(out[:d]).max() == 0.0            # nothing before the latency
    np.testing.assert_allclose(out[d: d + n], ref[:n], atol=1e-4, rtol=0)
    assert np.abs(ref[:n]).max() > 0.01            # and something to compare


@pytest.mark.parametrize("size", [32, 64, 100, 128, 256, 1000, 4096])
def test_tiny_stream_equals_offline_for_every_block_size(size):
    model = load("violin-tiny")
    x = melody()
    stream = Stream(model, size)
    assert_matches_offline(model, x, run_blocks(stream, x, size), stream)


@pytest.mark.parametrize("size", [32, 100, 256, 4096])
@pytest.mark.parametrize("tracker", ["net", "net-5ms"])
def test_the_pitch_networks_stream_as_offline(size, tracker):
    """With a pitch network as the stream's tracker: its GRU state carries from block to
    block, and the stream equals the offline rendering of the network run over the whole
    input (``causal_features`` with that tracker)."""
    model = load("violin-tiny")
    x = melody()
    stream = Stream(model, size, tracker=tracker)
    assert stream.latency == 320      # at 16 kHz the loudness window sets the analysis delay
    assert_matches_offline(model, x, run_blocks(stream, x, size), stream)


def test_the_pitch_network_streams_irregular_blocks_and_voices_as_offline():
    model = load("trumpet-tiny")
    x = melody()
    stream = Stream(model, 64, octave=-1, loudness_db=-6.0, tracker="net-5ms")
    sizes = [1, 63, 64, 65, 200, 7, 4096]
    out, i, k = [], 0, 0
    while i < x.size:
        out.append(stream.process(x[i: i + sizes[k % len(sizes)]]))
        i, k = i + sizes[k % len(sizes)], k + 1
    assert_matches_offline(model, x, np.concatenate(out), stream, octave=-1, loudness_db=-6.0)


def test_a_stream_tracker_is_checked():
    with pytest.raises(UserError, match="unknown streaming pitch tracker"):
        Stream(load("violin-tiny"), 64, tracker="crepe-full")
    slow = Model.from_preset("tiny", frame_rate=125.0)
    with pytest.raises(UserError, match="250 frames/s"):
        Stream(slow, 64, tracker="net")


@pytest.mark.parametrize("name,size", [("trumpet-full", 32), ("trumpet-full", 4096),
                                       ("violin-cnn", 64), ("violin-cnn", 4096),
                                       ("violin-tiny-q", 64), ("violin-cnn-q", 2048)])
def test_other_models_stream_equal_offline(name, size):
    model = load(name)
    x = melody(1.5)
    stream = Stream(model, size)
    assert_matches_offline(model, x, run_blocks(stream, x, size), stream)


@pytest.mark.parametrize("name,size", [("trumpet-cnn", 64), ("violin-tiny", 1000)])
def test_noise_floor_and_bandwidth_stream_equal_offline(name, size):
    from tests.conftest import shaped

    model = shaped(name)
    x = melody(1.5)
    stream = Stream(model, size)
    assert_matches_offline(model, x, run_blocks(stream, x, size), stream)


def test_irregular_blocks_and_adjustments_equal_offline():
    model = load("trumpet-tiny")
    x = melody()
    stream = Stream(model, 64, octave=-1, pitch_shift=2.0, loudness_db=-6.0, seed=3)
    sizes = [1, 63, 64, 65, 200, 7, 4096]
    out, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out.append(stream.process(x[i: i + n]))
        i, k = i + n, k + 1
    assert_matches_offline(model, x, np.concatenate(out), stream, octave=-1, pitch_shift=2.0,
                           loudness_db=-6.0, seed=3)


def test_synthesize_equals_model_synthesize_delayed():
    model = load("violin-tiny")
    hop = model.config.hop_size
    n_frames = 400
    frames_f0 = 440 * 2 ** (np.sin(np.linspace(0, 6, n_frames)) / 2)
    frames_ld = -30 + 20 * np.sin(np.linspace(0, 9, n_frames))
    ref = model.synthesize(frames_f0, frames_ld, seed=5)
    f0, ld = np.repeat(frames_f0, hop), np.repeat(frames_ld, hop)   # control signals
    for size in (32, 333, 4096):
        stream = Stream(model, size, seed=5)
        out = np.concatenate([stream.synthesize(f0[i: i + size], ld[i: i + size])
                              for i in range(0, f0.size, size)])
        d = stream.control_latency
        assert d == hop
        n = f0.size - d - 2 * hop
        np.testing.assert_allclose(out[d: d + n], ref[:n], atol=1e-4, rtol=0)


def test_phase_is_continuous_across_blocks():
    """A steady 440 Hz control through 37-sample blocks: the oscillator's phase after the
    blocks equals the closed-form phase, and the output equals the same control rendered in
    one block (so nothing jumps at block edges)."""
    model = load("violin-tiny")
    engine = StreamEngine(model)
    engine.reset(1)
    n = 37 * 400
    f0 = torch.full((1, n), 440.0)
    ld = torch.full((1, n), -20.0)
    with torch.inference_mode():
        out = torch.cat([engine.synthesize(f0[:, i: i + 37], ld[:, i: i + 37])
                         for i in range(0, n, 37)], 1)[0].numpy()
    rendered = engine.decoded - 1       # segments synthesized so far
    samples = rendered * model.config.hop_size
    expected = (2 * np.pi * 440.0 * samples / SR) % (2 * np.pi)
    phase = engine.state[engine.chain.n_decoder_states + 2]   # after prev_f0, prev_harmonics
    assert phase.dtype == torch.float64 and abs(float(phase[0]) - expected) < 1e-6
    whole = StreamEngine(model)
    whole.reset(1)
    with torch.inference_mode():
        one = whole.synthesize(f0, ld)[0].numpy()
    np.testing.assert_allclose(out, one, atol=1e-5, rtol=0)
    assert np.abs(one).max() > 0.01


def test_causal_features_are_centred_features_delayed():
    """For YIN, whose frames are independent of each other. (The pitch networks carry a state
    from frame to frame, so their offline mirror starts where the stream starts.)"""
    x = melody(1.0)
    centred = causal_features(x, 64, delay=0, tracker="fast")
    causal = causal_features(x, 64, tracker="fast")
    for a, b in zip(centred, causal, strict=True):
        np.testing.assert_array_equal(a[:-4], b[4:])


def test_the_default_tracker_follows_the_gliding_melody():
    """The stream's default pitch analysis (the pitch network) on ``melody``: a glide of
    +-0.6 octave at 0.8 Hz with its octave, a pause and breath noise; every frame of the tone
    is within 50 cents of the true pitch."""
    from fastddsp.realtime.stream import DEFAULT_TRACKER

    assert DEFAULT_TRACKER == "net"
    x = melody(2.0)
    t = np.arange(x.size) / SR
    f = 300 * 2 ** (0.6 * np.sin(2 * np.pi * 0.8 * t))
    env = 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t)) * ((t > 0.2) & ((t < 0.9) | (t > 1.1)))
    f0, conf, _ = causal_features(x, 64, delay=0)
    at = np.minimum(np.arange(f0.size) * 64, x.size - 1)
    on = env[at] > 0.03
    assert on.sum() > 300
    assert np.max(np.abs(1200 * np.log2(f0[on] / f[at][on]))) < 50
    assert np.all(conf[on] >= 0.5)


@pytest.mark.parametrize("name,declared_ms", [("violin-tiny", 20.0), ("violin-full", 20.0)])
def test_measured_latency_equals_declared(name, declared_ms):
    model = load(name)
    declared, measured = measure_latency(model, 64)
    assert declared == pytest.approx(declared_ms * SR / 1000)
    assert abs(measured - declared) <= 16          # within 1 ms


def test_cnn_declares_its_lookahead():
    model = load("violin-cnn")
    stream = Stream(model, 256)
    look = model.decoder.receptive_field[1]
    assert stream.lookahead_frames == look == 27
    assert stream.latency == 256 + (1 + look) * 64
    declared, measured = measure_latency(model, 256)
    assert abs(measured - declared) <= 16


def test_onset_finds_a_step():
    x = np.zeros(4000)
    x[1500:] = 1.0
    # the RMS over 100 samples reaches half the maximum when 25 of them are ones
    assert onset(x, window=100) == pytest.approx(1500 + 24, abs=0.01)


def test_silence_in_silence_out():
    for name in ("violin-tiny", "violin-cnn", "trumpet-full"):
        stream = Stream(load(name), 256)
        out = run_blocks(stream, np.zeros(SR, np.float32), 256)
        assert np.abs(out).max() == 0.0


def test_bad_blocks_are_refused():
    stream = Stream(load("violin-tiny"), 64)
    with pytest.raises(UserError, match="NaN"):
        stream.process(np.array([0.0, np.nan], np.float32))
    with pytest.raises(UserError, match="1-D"):
        stream.process(np.zeros((2, 64), np.float32))
    stream.process(np.zeros(64))
    with pytest.raises(UserError, match="reset"):   # one stream, one kind of input
        stream.synthesize(np.zeros(64), np.zeros(64))
    stream.reset()
    assert stream.synthesize(np.full(64, 440.0), np.full(64, -20.0)).size == 64
    with pytest.raises(UserError, match="negative"):
        stream.synthesize(np.full(64, -1.0), np.zeros(64))
    with pytest.raises(UserError, match="block size"):
        Stream(load("violin-tiny"), 0)
    other = Model.from_preset("tiny", sample_rate=22050)
    with pytest.raises(UserError, match="16 kHz"):
        Stream(other, 64).process(np.zeros(64))


@pytest.mark.parametrize("tracker", ["fast", "net", "net-5ms"])
def test_any_finite_input_keeps_the_output_finite_and_bounded(tracker):
    """A finite block of 1e19 used to overflow the analysis (NaN for 1.25 s); out-of-range
    values are held at the range's edge (limits), so the performance goes on."""
    model = load("violin-tiny")
    stream = Stream(model, 256, tracker=tracker)
    x = melody(2.0)
    blocks = [x[i: i + 256] * (1e19 if i // 256 == 40 else 1.0) for i in range(0, x.size, 256)]
    out = np.concatenate([stream.process(b) for b in blocks])
    assert np.all(np.isfinite(out)) and np.abs(out).max() < 20
    stream = Stream(model, 256)
    out = np.concatenate([stream.synthesize(np.full(256, 1e9 if i == 3 else 440.0),
                                            np.full(256, 1e30 if i == 5 else -20.0))
                          for i in range(30)])
    assert np.all(np.isfinite(out)) and np.abs(out).max() < 20


def test_a_block_of_text_is_a_user_error():
    stream = Stream(load("violin-tiny"), 256)
    with pytest.raises(UserError, match="numbers"):
        stream.process(["a"] * 256)
    with pytest.raises(UserError, match="numbers"):
        stream.synthesize(["a"] * 4, [0.0] * 4)
