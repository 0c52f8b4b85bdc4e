"""Real-time streaming: the same path as offline rendering, one block at a time.

``stream = Stream(model, block_size)``; ``stream.process(block)`` turns audio into the model's
instrument (causal pitch + loudness -> adjust -> decoder -> synth -> reverb) and
``stream.synthesize(f0_block, loudness_block)`` plays control signals. Blocks may have any
length; each call returns as many samples as it was given.

What a block carries to the next (all in ``StreamEngine``, a TorchScript-able module, so the
same code runs in Python, in the nn~ export and in the exported graph):
- analysis: the last samples of input the next frame's window needs; the last voiced f0;
- the chain (``models.chain.ChainStep``, the same stepped chain offline rendering runs): the
  decoder's causal conv caches (CNNs) or GRU state, oscillator phase and the last frame's
  controls (amplitudes are interpolated towards the next frame), the filtered-noise
  overlap-add, the reverb's partitioned convolution state. The white noise is the
  counter-based stream of ``seed``.

Timing. Analysis frame f sits at sample t = f * hop and sees the input window
``[t - 512, t)`` (pitch: the pitch network ``features.pitchnet`` by default, or YIN; loudness:
DDSP's A-weighted power; both windows 32 ms): it equals the centred analysis of the input
delayed by 256 samples. (The network trained for 5 ms of look-ahead, ``tracker="net-5ms"``,
reads a pitch window ending 80 samples after the instant: at 48 kHz that shortens the analysis
delay from 804 to 276 samples; at 16 kHz the loudness window keeps it at 256.)
The synthesis of frame segment f needs frame f + 1 (amplitudes are interpolated between
frames; the noise filter's overlap reaches one frame ahead), and a decoder with lookahead needs
``lookahead`` more frames, so the engine delays its output by ``(1 + lookahead) * hop``
samples. Hence:

    process:    latency = 256 + (1 + lookahead) * hop samples  (tiny, full: 320 = 20 ms)
    synthesize: latency = (1 + lookahead) * hop samples        (tiny, full: 64 = 4 ms)

and ``stream`` output sample n equals ``offline_reference`` sample n - (1 + lookahead) * hop
(within float rounding; tested for block sizes 32..4096): the streaming output is the offline
rendering of causal features, delayed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..dsp.core import SILENCE_DB
from ..errors import UserError
from ..features.adjust import adjust_features, adjust_frames, hold_voiced
from ..features.frames import Features
from ..features.loudness import frames_loudness, loudness_at, loudness_weights
from ..features.pitch import CAUSAL_TRACKERS, PITCH_RATE, TRACKERS, clean_f0
from ..features.pitchnet import HOP as NET_HOP
from ..features.pitchnet import NETWORKS, PitchNet, load_pitch_net, run_net
from ..features.yin import Yin, yin_frames
from ..limits import LOUDNESS_MAX_DB, MAX_INPUT_PEAK, check_block_size
from ..models.chain import ChainStep
from ..models.model import Model, one_pass

WINDOW = 512                   # analysis window (samples at 16 kHz): pitch and loudness
DECIMATION_TAPS_PER_RATIO = 24  # a high-rate model's pitch input: FIR taps per rate multiple
DECIMATION_CUTOFF_HZ = 6500.0   # its cutoff (below the 8 kHz of the 16 kHz pitch analysis)
QUIET_DB = 20.0                # unvoiced frames are lowered by this much, as offline transfer
STREAM_YIN = Yin(window=WINDOW)
DEFAULT_TRACKER = "net"        # the stream's pitch analysis (features.pitch.CAUSAL_TRACKERS)
VOICING_THRESHOLDS = {t: TRACKERS[t].voicing_threshold for t in CAUSAL_TRACKERS}


def resolve_tracker(tracker: str | None, hop: int, sample_rate: int) -> str:
    """The stream's tracker for a model: ``tracker``, checked; by default ``DEFAULT_TRACKER``
    where the model can stream timbre transfer at the networks' 250 frames/s, else YIN."""
    ratio = max(1, sample_rate // PITCH_RATE)
    if tracker is None:
        fits = sample_rate % PITCH_RATE == 0 and hop == NET_HOP * ratio
        return DEFAULT_TRACKER if fits else "fast"
    check_tracker(tracker, hop, sample_rate)
    return tracker


def check_tracker(tracker: str, hop: int, sample_rate: int) -> None:
    if tracker not in CAUSAL_TRACKERS:
        raise UserError(f"unknown streaming pitch tracker {tracker!r}; choose from "
                        f"{', '.join(CAUSAL_TRACKERS)}")
    ratio = max(1, sample_rate // PITCH_RATE)
    if tracker in NETWORKS and hop != NET_HOP * ratio:
        raise UserError("the pitch network runs at 250 frames/s; this model's frame rate is "
                        f"{sample_rate / hop:g}/s (use the fast tracker)")


def pitch_lead(tracker: str) -> int:
    """16 kHz samples between an analysis instant and the end of the pitch window: half YIN's
    window (centred), or the pitch network's delay."""
    return load_pitch_net(tracker).delay if tracker in NETWORKS else WINDOW // 2


def decimation_filter(ratio: int, sample_rate: int) -> torch.Tensor:
    """The causal lowpass FIR (Hann-windowed sinc, odd length) applied before keeping every
    ``ratio``-th sample of a high-rate input for pitch analysis; ``[1.0]`` at 16 kHz."""
    if ratio == 1:
        return torch.ones(1)
    n = DECIMATION_TAPS_PER_RATIO * ratio + 1
    k = np.arange(n) - (n - 1) / 2
    fc = DECIMATION_CUTOFF_HZ / sample_rate
    taps = 2 * fc * np.sinc(2 * fc * k) * np.hanning(n + 2)[1:-1]
    return torch.from_numpy(taps / taps.sum()).float()


def analysis_delay(sample_rate: int, tracker: str = DEFAULT_TRACKER) -> int:
    """Input samples between a causal analysis frame and the instant it analyses: the pitch
    window's lead after the instant (half YIN's window; the pitch network's delay) plus the
    decimation filter's delay at higher rates, or half the loudness window if longer (rounded
    up to whole 16 kHz samples)."""
    ratio = max(1, sample_rate // PITCH_RATE)
    pitch = pitch_lead(tracker) * ratio + (decimation_filter(ratio, sample_rate).numel() - 1) // 2
    return pitch + ratio * max(0, -(-(WINDOW // 2 - pitch) // ratio))


def pitch_back(sample_rate: int, tracker: str = DEFAULT_TRACKER) -> int:
    """16 kHz samples between the newest pitch-input sample of a frame and its pitch window's
    end (0 where the pitch window sets the analysis delay)."""
    ratio = max(1, sample_rate // PITCH_RATE)
    fir = (decimation_filter(ratio, sample_rate).numel() - 1) // 2
    return (analysis_delay(sample_rate, tracker) - pitch_lead(tracker) * ratio - fir) // ratio


class StreamEngine(nn.Module):
    """The whole streaming chain with its state. Tensors ``[batch, samples]`` in and out."""

    def __init__(self, model: Model, octave: int = 0, pitch_shift: float = 0.0,
                 loudness_db: float = 0.0, seed: int = 0, mix: bool = False,
                 tracker: str | None = None):
        """``mix``: the batch rows are voices of one instrument in one room; the output is
        their mix ``[1, samples]``. ``tracker``: the pitch analysis, "fast" (YIN), "net" or
        "net-5ms" (the pitch networks, ``features.pitchnet``); default: ``resolve_tracker``."""
        super().__init__()
        tracker = resolve_tracker(tracker, model.config.hop_size, model.config.sample_rate)
        self.tracker = tracker
        self.mix = mix
        cfg = model.config
        self.sample_rate = cfg.sample_rate
        self.hop = cfg.hop_size
        # the chain, stepped (reverb partitions of one hop: blocks of any number of frames);
        # an int8 model's decoder runs in ONNX Runtime and keeps the engine in Python
        self.chain = ChainStep(model, seed)
        self.lookahead = self.chain.look
        self.synth_delay = (1 + self.lookahead) * self.hop
        # pitch at 16 kHz (a multiple-of-16 kHz input decimated through a causal FIR),
        # loudness at the model's rate, both centred analysis_delay samples back
        self.analyse = cfg.sample_rate % PITCH_RATE == 0
        self.ratio = max(1, cfg.sample_rate // PITCH_RATE)
        self.pitch_rate = PITCH_RATE  # an attribute: TorchScript reads no globals
        self.window_size = WINDOW
        self.register_buffer("taps", decimation_filter(self.ratio, cfg.sample_rate).flip(0))
        self.fir_delay = (self.taps.numel() - 1) // 2
        self.analysis_delay = analysis_delay(cfg.sample_rate, tracker)
        # the pitch window ends pitch_lead 16 kHz samples after the analysis instant, that is
        # pitch_back samples before the newest 16 kHz sample
        self.use_net = tracker in NETWORKS
        self.pitch_net = load_pitch_net(tracker) if self.use_net else PitchNet()
        self.pitch_back = pitch_back(cfg.sample_rate, tracker)
        self.history = self.analysis_delay + self.window_size // 2 + self.taps.numel() \
            + self.pitch_back * self.ratio
        self.register_buffer("window", torch.hann_window(self.window_size, periodic=True))
        self.register_buffer("weights", loudness_weights(self.window_size, cfg.sample_rate))
        self.min_lag, self.max_lag = STREAM_YIN.min_lag, STREAM_YIN.max_lag
        self.margin, self.silence_db = STREAM_YIN.margin, STREAM_YIN.silence_db
        self.threshold = VOICING_THRESHOLDS[tracker]
        self.quiet_db = QUIET_DB
        self.floor_db = SILENCE_DB  # an attribute: TorchScript reads no float globals
        self.max_peak = MAX_INPUT_PEAK    # inputs are held within the valid ranges (limits),
        self.max_loudness = LOUDNESS_MAX_DB  # so no finite input overflows the analysis
        self.f0_factor = float(2.0 ** (octave + pitch_shift / 12.0))
        self.gain_db = float(loudness_db)
        self._init_state(1)

    def _init_state(self, batch: int) -> None:
        self.batch = batch
        self.inputs = torch.zeros(batch, self.history)   # input [input_start, received)
        self.input_start = -self.history
        # high rates: the 16 kHz pitch input
        self.pitch_in = torch.zeros(batch, self.window_size + self.pitch_back)
        self.pitch_start = -self.window_size - self.pitch_back
        self.pitch_state = self.pitch_net.initial_state(batch)
        self.decimated = 0
        self.received = 0
        self.next_frame = 0                              # next analysis/control frame
        self.held_f0 = torch.full([batch], -1.0)         # last voiced f0 (-1: none yet)
        self.decoded = 0                                 # frames into the chain
        self.state = self.chain.initial_state(batch, self.mix)
        self.output = torch.zeros(1 if self.mix else batch, 0)

    @torch.jit.export
    def reset(self, batch: int = 1) -> None:
        self._init_state(batch)

    @torch.jit.export
    def latency(self) -> int:
        """Input -> output delay of ``process`` in samples."""
        return self.analysis_delay + self.synth_delay

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.process(audio)

    @torch.jit.export
    def process(self, audio: torch.Tensor) -> torch.Tensor:
        """Input audio ``[batch, n]`` -> instrument audio ``[batch, n]``."""
        if audio.shape[0] != self.batch:
            self.reset(audio.shape[0])
        n = audio.shape[1]
        audio = audio.to(self.inputs.dtype).clamp(-self.max_peak, self.max_peak)
        self.inputs = torch.cat([self.inputs, audio], 1)
        self.received += n
        self._decimate()
        count = self.received // self.hop + 1 - self.next_frame
        if count > 0:
            ends = (torch.arange(count) + self.next_frame) * self.hop
            # loudness: the model-rate window centred analysis_delay back; pitch: the 16 kHz
            # window ending at each frame, around the same instant (at 16 kHz: the same frames)
            first = ends - self.analysis_delay - self.window_size // 2 - self.input_start
            idx = first.unsqueeze(1) + torch.arange(self.window_size)
            frames = self.inputs[:, idx].reshape(self.batch * count, self.window_size)
            pitch_frames = frames
            if self.ratio > 1:
                idx = (ends // self.ratio - self.pitch_back - self.window_size
                       - self.pitch_start).unsqueeze(1) + torch.arange(self.window_size)
                pitch_frames = self.pitch_in[:, idx].reshape(self.batch * count,
                                                             self.window_size)
            elif self.pitch_back != 0:
                idx = (ends - self.pitch_back - self.window_size
                       - self.input_start).unsqueeze(1) + torch.arange(self.window_size)
                pitch_frames = self.inputs[:, idx].reshape(self.batch * count, self.window_size)
            if self.use_net:
                f0, conf, self.pitch_state = self.pitch_net.track(pitch_frames, self.pitch_state)
            else:
                f0, conf = yin_frames(pitch_frames, self.pitch_rate, self.min_lag,
                                      self.max_lag, self.margin, self.silence_db)
            ld = frames_loudness(frames, self.window, self.weights)
            self.next_frame += count
            self._drop()
            f0, ld = self._adjust(f0.view(self.batch, count), conf.view(self.batch, count),
                                  ld.view(self.batch, count))
            self._frames(f0, ld)
        return self._pop(n)

    @torch.jit.export
    def synthesize(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        """Control signals ``[batch, n]`` (one value per sample; frame f reads sample
        f * hop) -> audio ``[batch, n]``."""
        if f0_hz.shape[0] != self.batch:
            self.reset(f0_hz.shape[0])
        n = f0_hz.shape[1]
        start = self.received
        self.received += n
        count = (self.received - 1) // self.hop + 1 - self.next_frame
        if count > 0:
            idx = (torch.arange(count) + self.next_frame) * self.hop - start
            self.next_frame += count
            f0 = f0_hz[:, idx].float().clamp(0.0, self.sample_rate / 2.0)
            self._frames(f0, loudness_db[:, idx].float().clamp_max(self.max_loudness))
        return self._pop(n)

    def _decimate(self) -> None:
        """A high-rate input's 16 kHz pitch input up to the received audio: every
        ``ratio``-th sample of the causal FIR's output (at 16 kHz the input itself serves)."""
        last = (self.received - 1) // self.ratio          # the last 16 kHz sample ready
        if self.ratio == 1 or last < self.decimated:
            return
        at = torch.arange(self.decimated, last + 1) * self.ratio   # input index of each
        idx = (at - self.taps.numel() + 1 - self.input_start).unsqueeze(1) + \
            torch.arange(self.taps.numel())
        # in float64, so the offline mirror (``causal_features``) gets the same float32
        # samples whatever the summation order: YIN's voicing decision at an onset can turn
        # on a last bit
        filtered = (self.inputs[:, idx].double() @ self.taps.double()).float()
        self.pitch_in = torch.cat([self.pitch_in, filtered], 1)
        self.decimated = last + 1

    def _drop(self) -> None:
        """Forgets input no later frame or filter output needs."""
        end = self.next_frame * self.hop
        keep_in = end - self.analysis_delay - self.window_size // 2
        if self.ratio > 1:  # the FIR's history, and the 16 kHz pitch input's window
            keep_in = min(keep_in, self.decimated * self.ratio - self.taps.numel() + 1)
            drop = end // self.ratio - self.pitch_back - self.window_size - self.pitch_start
            if drop > 0:
                self.pitch_in = self.pitch_in[:, drop:]
                self.pitch_start += drop
        else:
            keep_in = min(keep_in, end - self.pitch_back - self.window_size)
        drop = keep_in - self.input_start
        if drop > 0:
            self.inputs = self.inputs[:, drop:]
            self.input_start += drop

    def _adjust(self, f0: torch.Tensor, conf: torch.Tensor, ld: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal f0 cleanup (unvoiced frames hold the last voiced f0) and the transfer
        adjustments (octave/semitones, loudness offset, unvoiced frames lowered)."""
        voiced = conf >= self.threshold
        if bool((self.held_f0 < 0).any()):  # the very first frame: nothing held yet
            self.held_f0 = torch.where(self.held_f0 < 0, f0[:, 0], self.held_f0)
        f0 = hold_voiced(f0, voiced, self.held_f0)
        self.held_f0 = f0[:, -1]
        return adjust_frames(f0, ld, voiced, self.f0_factor, self.gain_db, self.quiet_db,
                             self.floor_db)

    def _frames(self, f0: torch.Tensor, loudness: torch.Tensor) -> None:
        """New frames of (adjusted) pitch and loudness -> the chain -> output."""
        start = torch.tensor([self.decoded], dtype=torch.int64)
        self.decoded += f0.shape[1]
        out, self.state = self.chain.step(f0, loudness, start, self.state, mix=self.mix)
        self.output = torch.cat([self.output, out], 1)

    def _pop(self, n: int) -> torch.Tensor:
        out = self.output[:, :n]
        self.output = self.output[:, n:]
        return out


class Stream:
    """A model's streaming engine with numpy in and out (see the module docs).

    ``block_size`` is the block length the host will use: blocks of any length are accepted;
    it only enters ``buffered_latency`` (the algorithmic latency plus one block of input
    buffering)."""

    def __init__(self, model: Model, block_size: int = 256, octave: int = 0,
                 pitch_shift: float = 0.0, loudness_db: float = 0.0, seed: int = 0,
                 tracker: str | None = None):
        check_block_size(block_size)
        for name, value in (("pitch shift", pitch_shift), ("loudness", loudness_db)):
            if not np.isfinite(value):
                raise UserError(f"{name} must be a finite number")
        self.model = model.eval()
        self.block_size = int(block_size)
        self.sample_rate = model.sample_rate
        engine = StreamEngine(model, int(octave), float(pitch_shift), float(loudness_db), seed,
                              tracker=tracker)
        self.tracker = engine.tracker
        # TorchScript: the same code, ~40 % less per-block overhead. An int8 model's decoder
        # runs in ONNX Runtime and stays in Python.
        if model.is_quantized:
            self.engine = engine
        else:
            with warnings.catch_warnings():  # "deprecated": still the way to reach nn~ hosts
                warnings.simplefilter("ignore")
                self.engine = torch.jit.script(engine)
        with torch.inference_mode():  # let TorchScript profile and optimise before real time
            for _ in range(6):
                self.engine.process(torch.zeros(1, self.block_size))
                self.engine.synthesize(torch.zeros(1, self.block_size),
                                       torch.full((1, self.block_size), SILENCE_DB))
                self.engine.reset(1)
        self._mode = ""

    @property
    def lookahead_frames(self) -> int:
        return self.engine.lookahead

    @property
    def latency(self) -> int:
        """Algorithmic latency of ``process`` (input -> output), in samples."""
        return self.engine.latency()

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency / self.sample_rate

    @property
    def control_latency(self) -> int:
        """Latency of ``synthesize`` (control input -> audio), in samples."""
        return self.engine.synth_delay

    @property
    def buffered_latency(self) -> int:
        return self.latency + self.block_size

    def reset(self) -> None:
        self.engine.reset(1)
        self._mode = ""

    def _check(self, name: str, block: Any) -> torch.Tensor:
        """A block as a ``[1, n]`` tensor; NaN, infinity and non-numbers are refused. (Finite
        values out of range are held at the range's edge by the engine: a stream must not
        stop mid-performance.)"""
        try:
            arr = np.asarray(block, dtype=np.float32)
        except (TypeError, ValueError):
            raise UserError(f"{name} must be numbers") from None
        if arr.ndim != 1:
            raise UserError(f"{name} must be a 1-D block of samples, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise UserError(f"{name} contains NaN or infinite values")
        return torch.from_numpy(arr)[None]

    def _enter(self, mode: str) -> None:
        if self._mode and self._mode != mode:
            raise UserError(f"this stream is in {self._mode} mode; reset() it to {mode}")
        self._mode = mode

    @torch.inference_mode()
    def process(self, block: Any) -> np.ndarray:
        """Audio at the model's rate (mono) -> the instrument, same number of samples."""
        if not self.engine.analyse:
            raise UserError("streaming timbre transfer needs a model whose rate is a multiple "
                            "of 16 kHz (16, 32, 48 kHz)")
        x = self._check("audio block", block)
        self._enter("process")
        return self.engine.process(x)[0].numpy()

    @torch.inference_mode()
    def synthesize(self, f0_block: Any, loudness_block: Any) -> np.ndarray:
        """Control signals (f0 in Hz and loudness in dB, one value per output sample) ->
        audio, same number of samples."""
        f0 = self._check("f0 block", f0_block)
        ld = self._check("loudness block", loudness_block)
        if f0.shape != ld.shape:
            raise UserError("f0 and loudness blocks differ in length")
        if bool((f0 < 0).any()):
            raise UserError("f0 must not be negative")
        self._enter("synthesize")
        return self.engine.synthesize(f0, ld)[0].numpy()


def pitch_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 16 kHz signal the stream tracks pitch on, offline: at a multiple of 16 kHz the
    causal FIR's output at every ``ratio``-th sample (zeros before the start; in float64, as
    the stream), ``(taps - 1) / 2`` input samples late; at 16 kHz the input itself."""
    x = np.asarray(audio, np.float32)
    ratio = max(1, sample_rate // PITCH_RATE)
    if ratio == 1:
        return x
    taps = decimation_filter(ratio, sample_rate)
    y = torch.nn.functional.conv1d(
        torch.nn.functional.pad(torch.from_numpy(x).double(),
                                (taps.numel() - 1, 0)).view(1, 1, -1),
        taps.flip(0).double().view(1, 1, -1))[0, 0]
    return y[::ratio].float().numpy()


def causal_features(audio: np.ndarray, hop: int, sample_rate: int = PITCH_RATE,
                    delay: int | None = None, tracker: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offline, the frames ``process`` analyses: frame f at sample t = f * hop, for f = 0 ..
    len(audio) // hop; pitch on the 16 kHz signal (``decimation_filter`` at higher rates),
    loudness at ``sample_rate``, both for the instant ``delay`` samples before t (default: the
    stream's ``analysis_delay``; 0: centred windows, no analysis latency). Returns raw f0,
    confidence and loudness. ``tracker``: as ``StreamEngine``'s."""
    tracker = resolve_tracker(tracker, hop, sample_rate)
    ratio = max(1, sample_rate // PITCH_RATE)
    full = analysis_delay(sample_rate, tracker)
    delay = full if delay is None else delay
    x = np.asarray(audio, np.float32)
    pitch_in = pitch_input(x, sample_rate)
    ends = np.arange(len(audio) // hop + 1, dtype=np.int64) * hop
    # the stream's pitch window ends pitch_back before t / ratio; shifted by (full - delay)
    pitch_ends = (ends + full - delay) // ratio - pitch_back(sample_rate, tracker)
    if tracker in NETWORKS:  # run in order from the first frame, as the stream runs it
        f0, conf = run_net(load_pitch_net(tracker), pitch_in, pitch_ends)
    else:
        f0, conf = STREAM_YIN.pitch(pitch_in, pitch_ends - WINDOW // 2)
    delayed = np.concatenate([np.zeros(delay, np.float32), x])  # (no negative centres)
    ld = loudness_at(delayed, ends, sample_rate, n_fft=WINDOW)
    return f0, conf, ld


def offline_controls(model: Model, audio: np.ndarray, octave: int = 0,
                     pitch_shift: float = 0.0, loudness_db: float = 0.0,
                     analysis_delay: int | None = None, tracker: str | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The f0 and loudness frames ``process`` gives the decoder, computed offline from the
    offline pieces (centred YIN and loudness on the delayed input, ``clean_f0``, the transfer
    adjustments). ``analysis_delay=0``: with centred analysis windows (default: the
    stream's)."""
    tracker = resolve_tracker(tracker, model.config.hop_size, model.sample_rate)
    f0, conf, ld = causal_features(audio, model.config.hop_size, model.sample_rate,
                                   analysis_delay, tracker)
    threshold = VOICING_THRESHOLDS[tracker]
    f0 = clean_f0(f0, conf, threshold, causal=True)
    feats, _ = adjust_features(Features(f0, ld, conf, model.frame_rate), model.stats,
                               octave, pitch_shift, loudness_db, threshold, QUIET_DB)
    return feats.f0_hz, feats.loudness_db


def offline_reference(model: Model, audio: np.ndarray, octave: int = 0,
                      pitch_shift: float = 0.0, loudness_db: float = 0.0, seed: int = 0,
                      analysis_delay: int | None = None, tracker: str | None = None
                      ) -> np.ndarray:
    """What ``process`` computes, offline: ``offline_controls`` rendered in one pass
    (``models.model.one_pass``, not stepped). Stream output sample n equals this at
    n - control latency. With ``analysis_delay=0``: the offline rendering with centred
    analysis windows."""
    f0, ld = offline_controls(model, audio, octave, pitch_shift, loudness_db, analysis_delay,
                              tracker)
    return one_pass(model, f0, ld, seed=seed)


def onset(audio: np.ndarray, window: int = 256, level: float = 0.5) -> float:
    """Where a signal's moving-RMS envelope first reaches ``level`` of its maximum (in
    samples, linearly interpolated)."""
    power = np.convolve(np.asarray(audio, np.float64) ** 2, np.ones(window) / window)
    env = np.sqrt(power)
    target = level * env.max()
    i = int(np.argmax(env >= target))
    if i == 0:
        return 0.0
    return i - 1 + (target - env[i - 1]) / (env[i] - env[i - 1])


def measure_latency(model: Model, block_size: int = 64, sample_rate: int | None = None,
                    seeds: tuple[int, ...] = (0, 1, 2, 3), tracker: str | None = None
                    ) -> tuple[int, float]:
    """The onset test: eight tones, each starting abruptly after silence, through ``process``
    block by block and through the offline rendering with centred analysis windows (no
    latency). Per tone, the measured latency is how much later the streamed output's envelope
    reaches half its peak. The instrument's noise scatters single tones by a few ms, so the
    test runs with several noise seeds and returns the median over all tones, as
    (declared, measured) in samples."""
    sample_rate = sample_rate or model.sample_rate
    slot = int(0.6 * sample_rate)
    t = np.arange(slot) / sample_rate
    gate = (t >= 0.2) & (t < 0.45)
    x = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) * gate
                        for f in (330, 392, 440, 494, 523, 587, 659, 698)]).astype(np.float32)
    f0, ld = offline_controls(model, x, analysis_delay=0, tracker=tracker)  # for every seed
    lags = []
    for seed in seeds:
        stream = Stream(model, block_size, seed=seed, tracker=tracker)
        out = np.concatenate([stream.process(x[i: i + block_size])
                              for i in range(0, x.size, block_size)])
        ref = one_pass(model, f0, ld, seed=seed)
        lags += [onset(out[k: k + slot]) - onset(ref[k: k + slot])
                 for k in range(0, x.size, slot)]
    return stream.latency, float(np.median(lags))
