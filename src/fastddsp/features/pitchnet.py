"""The streaming pitch network ("net" tracker): a small causal network distilled from CREPE-full.

YIN's difference function already holds every candidate period; what YIN gets wrong on a
reverberant violin is the choice (the previous note rings under the next one, and the common
period of both wins). The network makes that choice. Per analysis frame it reads the 512 newest
samples at 16 kHz, ending ``delay`` samples after the instant it reports:

- features: YIN's normalised difference d'(tau) of the whole window (periods to 256 samples,
  62.5 Hz) and of its newest half (to 128 samples, 125 Hz: what the newest 16 ms say), read at
  periods on a quarter-tone grid, and the levels of the whole window and of its newest 8 ms;
- a linear layer and a GRU over frames (250 frames/s: the frames before it, so note changes
  and the ringing of the previous note are seen in context), then a softmax over 301 pitch
  bins of 20 cents (CREPE's bins from 62.5 Hz to 2 kHz) and a voicing output, trained on
  CREPE-full's pitch (a Gaussian of 25 cents around it, on the frames CREPE calls voiced) and
  voicing (its confidence >= 0.5), and on synthetic tones of known pitch;
- the pitch is the probability-weighted mean of the bins around the most probable one,
  snapped to the deepest dip of d'(tau) within 150 cents of it (YIN's cosine fit, exact for
  a sinusoid) when there is one: the network tells the note, the difference function where
  exactly; the confidence is the voicing output's probability (voiced at 0.5).

Everything here is TorchScript-able: the streaming engine and its exports run this code (the
loaded network in float64, see ``load_pitch_net``). The
weights ship in the package (``pretrained/pitch-net.safetensors``); the recipe that trains them
is ``scripts/train_pitch_net.py`` with ``recipes/pitch-net.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..atomic import atomic_path
from ..errors import ModelFileError
from .yin import Yin, choose_period, difference, refine_lag

RATE = 16000
WINDOW = 512                 # samples at 16 kHz
HOP = 64                     # 250 frames/s
LONG_LAG = 256               # longest period of the whole window (62.5 Hz)
SHORT_LAG = 128              # of the newest half (125 Hz)
MIN_LAG = 8                  # 2 kHz
GRID_PER_OCTAVE = 24         # feature grid: quarter tones
FIRST_BIN = 59               # CREPE's bin of 62.5 Hz (20 cents per bin from 31.7 Hz)
N_BINS = 301                 # to CREPE's bin 359, 2005 Hz
CENTS_OFFSET = 1997.3794084376191  # CREPE's cents (re 10 Hz) of its bin 0
SNAP_CENTS = 150.0           # the pitch snaps to a dip of d' this close to the network's
YIN_TRUST = 0.02             # YIN's choice stands where its dip is at most this deep
FORMAT = "fastddsp-pitch-net"
PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
# the shipped networks, by tracker name: the same design, trained with different leads
NETWORKS = {"net": "pitch-net.safetensors",          # 256 samples (16 ms), YIN's latency
            "net-5ms": "pitch-net-5ms.safetensors"}  # 80 samples (5 ms), the lowest latency


def bin_hz(bins: np.ndarray | float) -> np.ndarray:
    """Frequency (Hz) of (fractional) output bins."""
    return 10.0 * 2.0 ** ((CENTS_OFFSET + 20.0 * (FIRST_BIN + np.asarray(bins, np.float64)))
                          / 1200.0)


def hz_bin(hz: np.ndarray) -> np.ndarray:
    """Fractional output bin of frequencies (Hz)."""
    return (1200.0 * np.log2(np.asarray(hz, np.float64) / 10.0) - CENTS_OFFSET) / 20.0 \
        - FIRST_BIN


def _grid(max_lag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer lags and interpolation weights reading d' at periods on the feature grid, from
    2 kHz down to ``RATE / max_lag``."""
    octaves = math.log2(max_lag / MIN_LAG)
    k = np.arange(round(octaves * GRID_PER_OCTAVE) + 1)
    lags = MIN_LAG * 2.0 ** (k / GRID_PER_OCTAVE)
    lo = np.minimum(np.floor(lags), max_lag - 1).astype(np.int64)
    return torch.from_numpy(lo), torch.from_numpy(lags - lo).float()


N_FEATURES = (_grid(LONG_LAG)[0].numel() + _grid(SHORT_LAG)[0].numel() + 2)


class PitchNet(nn.Module):
    """Frames ``[n, 512]`` of 16 kHz audio -> f0 (Hz) and confidence; the GRU state carries
    from call to call."""

    def __init__(self, hidden: int = 96, delay: int = 80):
        super().__init__()
        self.hidden = hidden
        self.delay = delay              # the window ends this many samples after its instant
        self.window = WINDOW
        self.rate = RATE
        self.long_lag, self.short_lag, self.min_lag = LONG_LAG, SHORT_LAG, MIN_LAG
        self.first_bin, self.cents_offset = FIRST_BIN, CENTS_OFFSET
        self.snap_ratio = 2.0 ** (SNAP_CENTS / 1200.0)
        self.register_buffer("offs", torch.arange(-4, 5), persistent=False)
        self.register_buffer("taus", torch.arange(MIN_LAG, LONG_LAG).to(torch.float64),
                             persistent=False)
        self.yin_trust = YIN_TRUST
        yin = Yin(window=WINDOW)                      # the stream's YIN (realtime.stream)
        self.yin_min_lag, self.yin_margin = yin.min_lag, yin.margin
        lo, frac = _grid(LONG_LAG)
        self.register_buffer("long_lo", lo, persistent=False)
        self.register_buffer("long_frac", frac, persistent=False)
        lo, frac = _grid(SHORT_LAG)
        self.register_buffer("short_lo", lo, persistent=False)
        self.register_buffer("short_frac", frac, persistent=False)
        self.inp = nn.Linear(N_FEATURES, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.n_bins = N_BINS
        self.out = nn.Linear(hidden, N_BINS + 1)

    @torch.jit.export
    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(1, batch, self.hidden, dtype=self.out.weight.dtype)

    @torch.jit.export
    def features(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[n, 512]`` -> (network input ``[n, N_FEATURES]``, d and d' of the whole window
        ``[n, 257]``), float32."""
        d, dn = difference(frames, self.long_lag, False)
        _, dn_short = difference(frames[:, self.window // 2:], self.short_lag, False)
        long = dn.index_select(1, self.long_lo) * (1 - self.long_frac) \
            + dn.index_select(1, self.long_lo + 1) * self.long_frac
        short = dn_short.index_select(1, self.short_lo) * (1 - self.short_frac) \
            + dn_short.index_select(1, self.short_lo + 1) * self.short_frac
        x = frames.to(torch.float32)
        level = 10 * torch.log10(x.pow(2).mean(1, keepdim=True) + 1e-10)
        level_new = 10 * torch.log10(x[:, self.window - self.window // 4:].pow(2).mean(
            1, keepdim=True) + 1e-10)
        feats = torch.cat([long.clamp(0.0, 2.0), short.clamp(0.0, 2.0),
                           (level + 50.0) / 30.0, (level_new + 50.0) / 30.0], 1)
        return feats.to(torch.float32), d, dn

    def forward(self, feats: torch.Tensor, state: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[batch, frames, N_FEATURES]`` -> logits ``[batch, frames, N_BINS + 1]``
        (the pitch bins' softmax logits, then the voicing logit) and the GRU's state."""
        h, state = self.gru(torch.relu(self.inp(feats.to(self.out.weight.dtype))), state)
        return self.out(h), state

    @torch.jit.export
    def decode(self, logits: torch.Tensor, d: torch.Tensor, dn: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[n, N_BINS + 1]`` and the frames' d, d' -> f0 (Hz), confidence, float32."""
        n = logits.shape[0]
        # the softmax's bins around the most probable one, relative to it (the normalisation
        # cancels in the weighted mean)
        bins = logits[:, : self.n_bins].to(torch.float64)
        top = bins.argmax(1)
        conf = torch.sigmoid(logits[:, self.n_bins].to(torch.float64))
        idx = (top.unsqueeze(1) + self.offs).clamp(0, self.n_bins - 1)
        w = torch.exp(bins.gather(1, idx) - bins.gather(1, top.unsqueeze(1)))
        centre = (w * idx.to(torch.float64)).sum(1) / w.sum(1).clamp_min(1e-12)
        cents = self.cents_offset + 20.0 * (centre + self.first_bin)
        lag_net = self.rate / (10.0 * torch.pow(2.0, cents / 1200.0))
        # the deepest dip of d' within snap_cents of the network's period: the network says
        # which note, YIN's difference function where exactly
        lo, hi = self.min_lag, self.long_lag
        a, b, c = dn[:, lo - 1: hi - 1], dn[:, lo: hi], dn[:, lo + 1: hi + 1]
        span = lag_net.unsqueeze(1) * self.snap_ratio     # within snap_cents: a lag range
        near = (b < a) & (b <= c) & (self.taus >= span / (self.snap_ratio * self.snap_ratio)) \
            & (self.taus <= span)
        best = b.masked_fill(~near, 1e9).min(1)
        tau = best.indices + lo
        d = d.to(torch.float64)
        # where YIN's own choice is a clearly periodic dip, it stands
        tau_yin, depth = choose_period(dn, self.yin_min_lag, self.long_lag, self.yin_margin)
        trust = depth <= self.yin_trust
        tau = torch.where(trust, tau_yin, tau)
        lag = torch.where((best.values < 1e9) | trust, refine_lag(d, tau, self.long_lag), lag_net)
        f0 = self.rate / lag
        return f0.to(torch.float32).reshape(n), conf.to(torch.float32).reshape(n)

    @torch.jit.export
    def track(self, frames: torch.Tensor, state: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[batch * count, 512]`` frames, batch-major (``count`` consecutive frames per batch
        row) -> f0, confidence ``[batch * count]`` and the new state."""
        batch = state.shape[1]
        feats, d, dn = self.features(frames)
        logits, state = self.forward(feats.view(batch, -1, feats.shape[1]), state)
        f0, conf = self.decode(logits.reshape(-1, logits.shape[2]), d, dn)
        return f0, conf, state


def pad_input(audio16k: np.ndarray) -> torch.Tensor:
    """The 16 kHz signal with a window of zeros on either side: what ``frames_at`` reads
    (padded once per signal, however many chunks of frames are cut from it)."""
    return torch.nn.functional.pad(torch.as_tensor(np.asarray(audio16k, np.float32)),
                                   (WINDOW, WINDOW))


def frames_at(padded: torch.Tensor, ends: np.ndarray) -> torch.Tensor:
    """``[n, 512]`` windows of a ``pad_input`` signal ending (exclusive) at ``ends`` (sample
    indices of the signal itself); zeros outside it."""
    ends = np.asarray(ends, np.int64)
    if (ends.size > 1 and ends[0] >= 0 and ends[-1] + WINDOW <= padded.numel()
            and np.all(np.diff(ends) == HOP)):
        # consecutive frames: a strided view, no copy
        return padded[int(ends[0]): int(ends[-1]) + WINDOW].unfold(0, WINDOW, HOP)
    idx = torch.from_numpy(ends)[:, None] + torch.arange(WINDOW)
    return padded[idx.clamp(0, padded.numel() - 1)]


def run_net(net: PitchNet, audio16k: np.ndarray, ends: np.ndarray,
            chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The network, in order from a fresh state, over the frames whose windows end at
    ``ends`` (consecutive: one hop of 64 samples apart), as the stream runs it."""
    ends = np.asarray(ends, np.int64)
    if ends.size > 1 and np.any(np.diff(ends) != HOP):
        raise ValueError("the pitch network runs on consecutive frames, one hop apart")
    state = net.initial_state(1)
    padded = pad_input(audio16k)
    f0s, confs = [], []
    with torch.inference_mode():
        for s in range(0, ends.size, chunk):
            f0, conf, state = net.track(frames_at(padded, ends[s: s + chunk]), state)
            f0s.append(f0.numpy())
            confs.append(conf.numpy())
    if not f0s:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(f0s), np.concatenate(confs)


def save_pitch_net(net: PitchNet, path: str | Path, about: dict) -> Path:
    """Weights and config in one safetensors file, with a SHA-256 over both (atomic write)."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    meta = {"format": FORMAT,
            "config": json.dumps({"hidden": net.hidden, "delay": net.delay}),
            "about": json.dumps(about)}
    meta["sha256"] = _digest(tensors, meta)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _digest(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    for key in sorted(meta):
        if key != "sha256":
            h.update(f"{key}|{meta[key]}".encode())
    return h.hexdigest()


_LOADED: dict[str, PitchNet] = {}


def weights_path(name: str) -> Path:
    return PRETRAINED / NETWORKS[name]


def weights_digest(name: str) -> str:
    """The SHA-256 a shipped network's file records (read from its header only)."""
    try:
        with safe_open(str(weights_path(name)), "pt") as f:
            return (f.metadata() or {}).get("sha256", "")
    except (OSError, SafetensorError) as e:
        raise ModelFileError(f"cannot read the pitch network {name}: {e}") from None


def load_pitch_net(path: str | Path = "net") -> PitchNet:
    """A shipped pitch network by tracker name (``NETWORKS``), or the one at ``path``,
    checked against its digest."""
    path = weights_path(path) if path in NETWORKS else Path(path)
    key = str(path)
    if key in _LOADED:
        return _LOADED[key]
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (OSError, SafetensorError) as e:
        raise ModelFileError(f"cannot read the pitch network {path}: {e}") from None
    if meta.get("format") != FORMAT or meta.get("sha256") != _digest(tensors, meta):
        raise ModelFileError(f"{path} is not an intact fastddsp pitch network")
    cfg = json.loads(meta["config"])
    net = PitchNet(int(cfg["hidden"]), int(cfg["delay"]))
    net.load_state_dict(tensors)
    # Inference in float64: the stream runs the network a few frames per call and offline
    # mirrors run it on thousands at once; in float32 the two differ by ~1e-6, enough to flip
    # the choice between two notes' bins at a note change. The features are computed row by
    # row and are bitwise the same either way.
    net.double().eval()
    _LOADED[key] = net
    return net


def net_pitch(audio16k: np.ndarray, centres: np.ndarray, weights: str | Path = "net"
              ) -> tuple[np.ndarray, np.ndarray]:
    """The network trackers: f0 and confidence at ``centres`` (16 kHz samples), from a shipped
    network (by name) or the one at ``weights``, run causally at 250 frames/s, each centre
    taking the frame nearest it."""
    net = load_pitch_net(weights)
    centres = np.asarray(centres, np.int64)
    if centres.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    idx = np.clip(np.round(centres / HOP).astype(np.int64), 0, None)
    f0, conf = run_net(net, audio16k, np.arange(int(idx.max()) + 1) * HOP + net.delay)
    return f0[idx], conf[idx]
