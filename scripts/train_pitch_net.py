"""Trains the streaming pitch network (``fastddsp.features.pitchnet``) with the recipe in
``recipes/pitch-net.json``, on CREPE-full labels made by ``scripts/pitch_labels.py``.

    .venv/bin/python scripts/pitch_labels.py            # once: about 40 minutes, one thread
    .venv/bin/python scripts/train_pitch_net.py [--recipe recipes/pitch-net-5ms.json] [--out FILE]

Data (see the recipe's "about"): the training stretches of violin-bach/ (its monophonic
movements: see ``pitch_labels.SOURCES``) and the trumpet notes,
each also pitch-shifted by the recipe's semitones (resampled: time and pitch scale together),
and synthetic tones of known pitch (random notes, glides, vibrato, timbres, breath noise and
rooms). Validation, which alone chooses the checkpoint: violin-bach's 'val' stretches, the
trumpet phrase and synthetic tones of a fixed seed. The thesis clips (the test set) and
violin-bach's 'test48' stretches are never read.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
from scipy.signal import fftconvolve

from fastddsp.features.metrics import pitch_agreement
from fastddsp.features.pitch import PITCH_RATE
from fastddsp.features.pitchnet import (
    HOP,
    N_BINS,
    PitchNet,
    frames_at,
    hz_bin,
    pad_input,
    run_net,
    save_pitch_net,
)
from fastddsp.io import read_audio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pitch_labels import CHORDAL

ROOT = Path(__file__).resolve().parents[1]
SR = PITCH_RATE


@dataclass
class Track:
    name: str
    audio: np.ndarray          # 16 kHz
    times: np.ndarray          # label instants (s)
    f0: np.ndarray             # Hz
    conf: np.ndarray           # [0, 1]; 0 = unvoiced


def frame_labels(track: Track, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels at the network's frame instants (f * 64 samples): pitch interpolated in cents
    between neighbouring labels within 100 cents of each other, else the nearer one."""
    t = np.arange(n_frames) * HOP / SR
    n = track.times.size
    pos = np.clip(np.interp(t, track.times, np.arange(n)), 0, n - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), max(n - 2, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    w = pos - i0
    c = 1200 * np.log2(np.maximum(track.f0, 1.0))
    close = np.abs(c[i1] - c[i0]) < 100
    nearest = np.where(w < 0.5, i0, i1)
    cents = np.where(close, c[i0] + w * (c[i1] - c[i0]), c[nearest])
    conf = np.where(close, track.conf[i0] + w * (track.conf[i1] - track.conf[i0]),
                    track.conf[nearest])
    return (2.0 ** (cents / 1200)).astype(np.float32), conf.astype(np.float32)


def shifted(track: Track, semitones: float) -> Track:
    """The track played faster or slower: pitch and time scale together."""
    r = 2.0 ** (semitones / 12)
    audio = soxr.resample(track.audio, SR * r, SR).astype(np.float32)
    return Track(f"{track.name}{semitones:+g}", audio, track.times / r, track.f0 * r, track.conf)


# ---------------------------------------------------------------- real data


def load_labelled(labels: Path, data: Path, relpath: str) -> tuple[np.ndarray, dict]:
    path = data / relpath
    z = np.load(labels / f"{path.parent.name}__{path.stem}.npz")  # FileNotFoundError: none
    audio, _ = read_audio(path, SR)
    return audio, {k: z[k] for k in ("centres", "f0", "confidence")}


def cut(name: str, audio: np.ndarray, lab: dict, start: float, end: float | None) -> Track:
    a = int(start * SR)
    b = audio.size if end is None else min(audio.size, int(end * SR))
    keep = (lab["centres"] >= a) & (lab["centres"] < b)
    return Track(f"{name}[{start:g}:{'' if end is None else f'{end:g}'}]", audio[a:b],
                 (lab["centres"][keep] - a) / SR, lab["f0"][keep].astype(np.float64),
                 np.where(lab["confidence"][keep] >= 0.5, lab["confidence"][keep], 0.0))


def real_tracks(labels: Path, data: Path, partial: bool = False
                ) -> tuple[list[Track], list[Track]]:
    """Training and validation stretches; ``partial``: skip files not labelled yet (for
    trying settings while the labelling runs; never for a shipped network)."""
    splits = json.loads((ROOT / "recipes" / "splits" / "violin-bach.json").read_text())
    train, val = [], []
    for path in sorted((data / "violin-bach").iterdir()):
        if path.stem in CHORDAL or (partial and not
                                    (labels / f"violin-bach__{path.stem}.npz").is_file()):
            continue
        audio, lab = load_labelled(labels, data, f"violin-bach/{path.name}")
        dur = audio.size / SR
        held = sorted((h["start"], h["end"] if h["end"] is not None else dur, h["split"])
                      for h in splits["held_out"] if h["file"] == path.name)
        at = 0.0
        for start, end, split in held:
            if start > at:
                train.append(cut(path.stem, audio, lab, at, start))
            if split == "val":
                val.append(cut(path.stem, audio, lab, start, end))
            at = end
        if at < dur:
            train.append(cut(path.stem, audio, lab, at, None))
    for path in sorted((data / "trumpet-notes").glob("*.wav")):
        audio, lab = load_labelled(labels, data, f"trumpet-notes/{path.name}")
        train.append(cut(f"trumpet-{path.stem}", audio, lab, 0.0, None))
    for path in sorted((data / "trumpet-phrase").glob("*.ogg")):
        audio, lab = load_labelled(labels, data, f"trumpet-phrase/{path.name}")
        val.append(cut("trumpet-phrase", audio, lab, 0.0, None))
    return train, val


# ---------------------------------------------------------------- synthetic tones


def synthetic(seconds: float, rng: np.random.Generator) -> Track:
    """Random notes of known pitch: detached or legato (with glides), vibrato, a random
    harmonic timbre (tilt, weak even harmonics, a formant), breath noise, a room."""
    n = int(seconds * SR)
    cents = np.zeros(n)
    env = np.zeros(n)
    voiced = np.zeros(n, bool)
    register = 1200 * np.log2(np.exp(rng.uniform(np.log(80), np.log(1000))))
    pos, prev_c, prev_on = 0, register, False
    while pos < n:
        if rng.random() < 0.15:                       # a rest
            pos += int(rng.uniform(0.05, 0.5) * SR)
            prev_on = False
            continue
        dur = int(rng.uniform(0.08, 1.0) * SR)
        end = min(n, pos + dur)
        c = np.clip(register + 100 * rng.integers(-12, 13) + rng.normal(0, 10),
                    1200 * np.log2(65.0), 1200 * np.log2(1900.0))
        m = end - pos
        curve = np.full(m, c)
        legato = prev_on and rng.random() < 0.5
        if legato:
            g = min(m, int(rng.uniform(0.0, 0.08) * SR))
            curve[:g] = prev_c + (c - prev_c) * np.arange(g) / max(g, 1)
        if rng.random() < 0.6:
            depth, rate = rng.uniform(5, 60), rng.uniform(4, 7)
            tt = np.arange(m) / SR
            curve += depth * np.sin(2 * np.pi * rate * tt + rng.uniform(0, 6.3)) \
                * np.clip(tt / rng.uniform(0.05, 0.4), 0, 1)
        cents[pos:end] = curve
        level = 10 ** (rng.uniform(-25, 0) / 20)
        att = max(1, int(rng.uniform(0.005, 0.08) * SR))
        rel = max(1, int(rng.uniform(0.02, 0.15) * SR))
        e = np.full(m, level)
        if not legato:
            e[: min(att, m)] *= np.linspace(0, 1, min(att, m))
        e[-min(rel, m):] *= np.linspace(1, 0.2 if rng.random() < 0.5 else 0.0, min(rel, m))
        env[pos:end] = e
        voiced[pos:end] = e > 0.05 * level
        prev_c, prev_on, pos = curve[-1], True, end
    # through rests the (silent) oscillator runs at the register's pitch; rests are unvoiced
    cents[cents == 0] = register
    f0 = 2.0 ** (cents / 1200)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tilt = rng.uniform(0.5, 2.5)
    even = rng.uniform(0.05, 1.0) if rng.random() < 0.3 else 1.0
    formant_hz, formant_db, formant_w = rng.uniform(400, 3500), rng.uniform(0, 15), \
        rng.uniform(0.3, 1.0)
    fundamental = rng.uniform(0.1, 1.0) if rng.random() < 0.2 else 1.0
    y = np.zeros(n)
    k_max = int(7900 / f0.min())
    for k in range(1, k_max + 1):
        hz = k * f0
        a = k ** -tilt * (even if k % 2 == 0 else 1.0) * (fundamental if k == 1 else 1.0)
        a = a * 10 ** (formant_db / 20 * np.exp(-0.5 * (np.log2(hz / formant_hz)
                                                          / formant_w) ** 2))
        a = a * (hz < 7900) * 10 ** (rng.normal(0, 3) / 20)
        y += a * np.sin(k * phase)
    y *= env / max(np.abs(y).max(), 1e-9) * 4
    breath = rng.normal(size=n) * env * 10 ** (rng.uniform(-40, -15) / 20)
    y = y + np.convolve(breath, [1, -0.9], "same")
    if rng.random() < 0.7:
        rt60 = rng.uniform(0.2, 2.5)
        ir_n = int(min(rt60, 2.0) * SR)
        ir = rng.normal(size=ir_n) * np.exp(-6.9 * np.arange(ir_n) / (rt60 * SR))
        ir = ir / np.sqrt((ir ** 2).sum())
        ir[0] += 1.0 / rng.uniform(0.2, 1.5)
        y = fftconvolve(y, ir)[:n]
    y = y + rng.normal(size=n) * 10 ** (rng.uniform(-80, -55) / 20)
    y = y / max(np.abs(y).max(), 1e-9) * 10 ** (rng.uniform(-30, -1) / 20)
    t = np.arange(0, n, SR // 100)
    return Track("synthetic", y.astype(np.float32), t / SR, f0[t], voiced[t].astype(float))


# ---------------------------------------------------------------- training


def features_of(net: PitchNet, track: Track) -> dict[str, torch.Tensor]:
    n_frames = track.audio.size // HOP + 1
    feats = []
    padded = pad_input(track.audio)
    with torch.no_grad():
        for s in range(0, n_frames, 4096):
            ends = np.arange(s, min(n_frames, s + 4096)) * HOP + net.delay
            feats.append(net.features(frames_at(padded, ends))[0])
    f0, conf = frame_labels(track, n_frames)
    b = hz_bin(f0)
    conf = np.where((b > -1) & (b < N_BINS), conf, 0.0)
    return {"x": torch.cat(feats), "bin": torch.from_numpy(b.astype(np.float32)),
            "conf": torch.from_numpy(conf.astype(np.float32))}


def batch_of(sets: list[dict], weights: np.ndarray, rng: np.random.Generator, size: int,
             frames: int, sigma_bins: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences of features, soft pitch targets (a Gaussian over the bins, summing to 1)
    and voicing targets (0/1)."""
    xs, ys, vs = [], [], []
    bins = torch.arange(N_BINS, dtype=torch.float32)
    for i in rng.choice(len(sets), size, p=weights):
        s = sets[i]
        start = int(rng.integers(0, max(1, s["x"].shape[0] - frames)))
        sl = slice(start, start + frames)
        x, voiced = s["x"][sl], (s["conf"][sl] >= 0.5).float()
        y = torch.exp(-0.5 * ((bins - s["bin"][sl, None]) / sigma_bins) ** 2)
        y = y / y.sum(1, keepdim=True).clamp_min(1e-12)
        if x.shape[0] < frames:
            pad = frames - x.shape[0]
            x = torch.nn.functional.pad(x, (0, 0, 0, pad))
            y = torch.nn.functional.pad(y, (0, 0, 0, pad))
            voiced = torch.nn.functional.pad(voiced, (0, pad), value=-1.0)  # -1: no frame
        xs.append(x)
        ys.append(y)
        vs.append(voiced)
    return torch.stack(xs), torch.stack(ys), torch.stack(vs)


def loss_of(logits: torch.Tensor, y: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the pitch bins on voiced frames plus the voicing's binary
    cross-entropy on every frame."""
    logp = torch.log_softmax(logits[..., :N_BINS], -1)
    ce = -(y * logp).sum(-1)
    v = voiced > 0.5
    pitch = ce[v].mean() if bool(v.any()) else ce.sum() * 0
    real = voiced >= 0
    voicing = torch.nn.functional.binary_cross_entropy_with_logits(logits[..., N_BINS][real],
                                                                   voiced[real])
    return pitch + voicing


def rpa(net: PitchNet, tracks: list[Track]) -> float:
    """Raw pitch accuracy against the labels' voiced frames, the network run causally from
    each track's start, each label taking the nearest frame."""
    refs, ests, voiced = [], [], []
    for tr in tracks:
        n_frames = tr.audio.size // HOP + 1
        f0, _ = run_net(net, tr.audio, np.arange(n_frames) * HOP + net.delay)
        idx = np.clip(np.round(tr.times * SR / HOP).astype(np.int64), 0, n_frames - 1)
        refs.append(tr.f0)
        ests.append(f0[idx])
        voiced.append(tr.conf >= 0.5)
    return pitch_agreement(np.concatenate(refs), np.concatenate(voiced),
                           np.concatenate(ests))["rpa"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "pitch-net.json"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--labels", default=str(ROOT / "cache" / "pitch-labels"))
    ap.add_argument("--out", help="where to write the network (default: the recipe's "
                    "\"weights\" file in the package)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    ap.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    ap.add_argument("--partial", action="store_true",
                    help="use only the files labelled so far (trying settings, never shipped)")
    ap.add_argument("--smoke", action="store_true",
                    help="a check of this script: synthetic tones only, two minutes of them")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = json.loads(Path(args.recipe).read_text())
    out = args.out or str(ROOT / "src" / "fastddsp" / "pretrained" / recipe["weights"])
    steps = args.steps or recipe["steps"]
    seed = recipe["seed"] if args.seed is None else args.seed
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = PitchNet(recipe["hidden"], recipe["delay"])

    t0 = time.perf_counter()
    if args.smoke:
        train, val = [synthetic(30.0, rng) for _ in range(2)], [synthetic(30.0, rng)]
    else:
        train, val = real_tracks(Path(args.labels), Path(args.data), args.partial)
    train_versions = train + [shifted(t, s) for t in train
                              for s in recipe["pitch_shifts_semitones"]]
    minutes = 2 if args.smoke else recipe["synthetic_minutes"]
    synth = [synthetic(30.0, rng) for _ in range(int(minutes * 2))]
    val_rng = np.random.default_rng(12345)
    val_synth = [synthetic(30.0, val_rng) for _ in range(1 if args.smoke else 4)]
    real_sets = [features_of(net, t) for t in train_versions]
    synth_sets = [features_of(net, t) for t in synth]
    sets = real_sets + synth_sets
    real_w = np.array([s["x"].shape[0] for s in real_sets], float)
    synth_w = np.array([s["x"].shape[0] for s in synth_sets], float)
    share = recipe["synthetic_share"]
    weights = np.concatenate([real_w / real_w.sum() * (1 - share), synth_w / synth_w.sum() * share])
    print(f"data: {len(train)} real stretches ({sum(t.audio.size for t in train) / SR / 60:.1f} "
          f"min) x {1 + len(recipe['pitch_shifts_semitones'])} versions, "
          f"{len(synth)} synthetic; features in {time.perf_counter() - t0:.0f} s", flush=True)

    opt = torch.optim.Adam(net.parameters(), lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=recipe["lr_final"])
    warm = recipe["warmup_frames"]
    sigma = recipe["label_sigma_cents"] / 20.0
    best, best_state, history = -1.0, None, []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        net.train()
        x, y, v = batch_of(sets, weights, rng, recipe["batch"], recipe["sequence_frames"], sigma)
        logits, _ = net(x, net.initial_state(x.shape[0]))
        loss = loss_of(logits[:, warm:], y[:, warm:], v[:, warm:])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % recipe["eval_every"] == 0 or step == steps:
            net.eval()
            scores = {"violin": rpa(net, [t for t in val if not t.name.startswith("trumpet")]),
                      "synthetic": rpa(net, val_synth)}
            if not args.smoke:
                scores["trumpet"] = rpa(net, [t for t in val if t.name.startswith("trumpet")])
            score = float(np.mean(list(scores.values())))
            history.append({"step": step, "loss": loss.item(), **scores})
            print(f"step {step}: loss {loss.item():.4f} val " +
                  " ".join(f"{k} {v:.3f}" for k, v in scores.items()) +
                  f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            if score > best:
                best, best_state = score, (step, scores, copy.deepcopy(net.state_dict()))
    step, scores, state = best_state
    net.load_state_dict(state)
    net.eval()
    about = {"recipe": Path(args.recipe).name, "seed": seed, "step": step,
             "validation_rpa": scores,
             "history": history,
             "attribution": "Trained on recordings by John Garner and MinJi Kim (CC BY 3.0, "
                            "via the Bach Violin Dataset) and trumpet samples of VSCO-2 CE "
                            "(CC BY 3.0), with CREPE-full's pitch as labels."}
    save_pitch_net(net, out, about)
    print(f"chose step {step} ({scores}); wrote {out}", flush=True)


if __name__ == "__main__":
    main()
