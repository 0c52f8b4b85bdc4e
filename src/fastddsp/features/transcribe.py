"""Polyphonic transcription: audio -> notes with pitch bends, with Basic Pitch's network.

The network (Spotify's Basic Pitch, ICASSP 2022, Apache-2.0) ships in its PyPI wheel as an
ONNX file; we run that file in ONNX Runtime and never import the ``basic_pitch`` package (it
needs TensorFlow). Install it without its dependencies: ``pip install --no-deps
basic-pitch``. The network reads 2 s windows of 22.05 kHz mono audio (43,844 samples) and gives
172 frames (hop 256 samples, 86 frames/s) of three maps: note activity and onsets for the 88
piano keys, and a pitch contour at 3 bins per semitone from 27.5 Hz. Windows overlap by 30
frames; the middle 142 frames of each are kept and placed at their own times.

Notes are read from the maps here (our own decoding): each onset peak above
``ONSET_THRESHOLD`` starts a note on its key that lasts while the key's activity stays above
``FRAME_THRESHOLD`` (gaps of up to ``GAP_FRAMES`` bridged, a new onset on the key ending it);
stretches of strong activity that no onset started become notes too; notes shorter than
``MIN_NOTE_S`` are dropped. A note's pitch bend follows the contour's peak within a semitone
and a third of its key (parabolic interpolation), median-smoothed; its velocity the
activity's peak.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage
import soxr

from ..errors import UserError

RATE = 22050
HOP = 256
WINDOW = 43844          # samples a window (2 s less one hop)
FRAMES = 172            # frames a window
OVERLAP = 30            # frames shared by neighbouring windows
LOWEST_MIDI = 21        # key 0 (27.5 Hz)
CONTOUR_BINS = 3        # per semitone
ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
STRONG_THRESHOLD = 0.5  # activity that starts a note without an onset
RESTRIKE_THRESHOLD = 0.8  # an onset inside a sounding note on its key
GAP_FRAMES = 3
MIN_NOTE_S = 0.12
BEND_HALF_WIDTH = 4     # contour bins each side of the key
CONTOUR_CENTRE = 1      # the contour bin of a key's own pitch is 3 * key + 1 (measured on
                        # steady tones of 262 and 440 Hz: the peak, 0.88 vs 0.25 and 0.15)
TIME_OFFSET_S = 0.0     # calibration of the frame times (measured: docs/polyphony.md)
INPUT = "serving_default_input_2:0"     # the converted network's names
OUTPUTS = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2",
           "contour": "StatefulPartitionedCall:0"}


@dataclass
class TranscribedNote:
    midi: int
    start_s: float
    end_s: float
    velocity: float                     # 0..1
    bend_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bends: np.ndarray = field(default_factory=lambda: np.zeros(0))  # semitones


def note_scores(reference: Sequence[Any], found: Sequence[Any], tolerance: float = 0.05
                ) -> tuple[float, float, float]:
    """Precision, recall and F-measure of ``found`` notes against ``reference`` notes (both
    with ``midi`` and ``start_s``): a found note counts when its key matches and its onset is
    within ``tolerance`` s, each matched once (the closest onset first)."""
    used: set[int] = set()
    hits = 0
    for n in sorted(reference, key=lambda n: n.start_s):
        match = [j for j, e in enumerate(found) if j not in used and e.midi == n.midi
                 and abs(e.start_s - n.start_s) <= tolerance]
        if match:
            used.add(min(match, key=lambda j: abs(found[j].start_s - n.start_s)))
            hits += 1
    p, r = hits / max(1, len(found)), hits / max(1, len(reference))
    return p, r, 2 * p * r / max(1e-9, p + r)


def model_path() -> Path:
    """Basic Pitch's ONNX network, from its installed wheel (without importing it)."""
    spec = importlib.util.find_spec("basic_pitch")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "saved_models" / "icassp_2022" / "nmp.onnx"
        if path.is_file():
            return path
    raise UserError("polyphonic transcription needs Basic Pitch's network: pip install "
                    "--no-deps basic-pitch")


@lru_cache(maxsize=1)
def _session() -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path()), options,
                                providers=["CPUExecutionProvider"])


def activations(audio: np.ndarray, sample_rate: int, batch: int = 4
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mono audio -> frame times ``[T]`` (s) and the network's note ``[T, 88]``, onset
    ``[T, 88]`` and contour ``[T, 264]`` maps."""
    x = np.asarray(audio, np.float32)
    if sample_rate != RATE:
        x = soxr.resample(x, sample_rate, RATE, quality="HQ").astype(np.float32)
    pad = OVERLAP // 2 * HOP
    x = np.concatenate([np.zeros(pad, np.float32), x])
    step = WINDOW - OVERLAP * HOP
    starts = list(range(0, max(1, x.size), step))
    session = _session()
    outputs = [OUTPUTS[k] for k in ("note", "onset", "contour")]
    keep = slice(OVERLAP // 2, FRAMES - OVERLAP // 2)
    maps: list[list[np.ndarray]] = [[], [], []]
    for i in range(0, len(starts), batch):
        group = starts[i: i + batch]
        windows = np.zeros((len(group), WINDOW, 1), np.float32)
        for j, s in enumerate(group):
            piece = x[s: s + WINDOW]
            windows[j, : piece.size, 0] = piece
        for m, value in zip(maps, session.run(outputs, {INPUT: windows}), strict=True):
            m.append(value[:, keep].reshape(-1, value.shape[-1]))
    note, onset, contour = (np.concatenate(m) for m in maps)
    times = np.concatenate([(s + np.arange(FRAMES)[keep] * HOP - pad) / RATE for s in starts])
    n = int(np.searchsorted(times, (x.size - pad) / RATE, side="right"))
    return times[:n] + TIME_OFFSET_S, note[:n], onset[:n], contour[:n]


def transcribe(audio: np.ndarray, sample_rate: int) -> list[TranscribedNote]:
    """Polyphonic audio -> notes with pitch bends, in time order (see the module docs)."""
    times, note, onset, contour = activations(audio, sample_rate)
    return notes_from_maps(times, note, onset, contour)


def notes_from_maps(times: np.ndarray, note: np.ndarray, onset: np.ndarray,
                    contour: np.ndarray) -> list[TranscribedNote]:
    """The network's maps -> notes (see the module docs)."""
    rate = 1.0 / float(np.median(np.diff(times))) if times.size > 1 else RATE / HOP
    min_frames = max(1, round(MIN_NOTE_S * rate))
    notes = []
    for key in range(note.shape[1]):
        for a, b in _key_notes(note[:, key], onset[:, key], min_frames):
            velocity = float(np.clip(note[a:b, key].max(), 0.0, 1.0))
            bend_t, bends = _bends(times[a:b], contour[a:b], key, note[a:b, key])
            end = times[b] if b < times.size else times[-1] + 1.0 / rate
            notes.append(TranscribedNote(key + LOWEST_MIDI, float(times[a]), float(end),
                                         velocity, bend_t, bends))
    return sorted(notes, key=lambda n: (n.start_s, n.midi))


def _key_notes(active: np.ndarray, onset: np.ndarray, min_frames: int
               ) -> list[tuple[int, int]]:
    """One key's notes as frame spans [a, b): onsets start notes (inside a sounding note only
    a strong one, a re-articulation), activity carries them; strong activity next to a note
    lengthens it, elsewhere it is a note of its own."""
    n = active.size
    peaks = np.flatnonzero((onset >= ONSET_THRESHOLD)
                           & (onset >= np.concatenate([[0.0], onset[:-1]]))
                           & (onset > np.concatenate([onset[1:], [0.0]])))
    spans: list[list[int]] = []
    for a in peaks:
        if spans and a < spans[-1][1] and onset[a] < RESTRIKE_THRESHOLD:
            continue                                    # within a note: not a new one
        if spans and a < spans[-1][1]:
            spans[-1][1] = int(a)                       # a re-articulation ends the last
        b, gap = int(a), 0
        while b < n and gap <= GAP_FRAMES:
            gap = 0 if active[b] >= FRAME_THRESHOLD else gap + 1
            b += 1
        spans.append([int(a), b - gap])
    taken = np.zeros(n, bool)
    for a, b in spans:
        taken[a:b] = True
    labels, _ = scipy.ndimage.label((active >= STRONG_THRESHOLD) & ~taken)
    for region in scipy.ndimage.find_objects(labels):
        a, b = region[0].start, region[0].stop
        before = [s for s in spans if 0 <= a - s[1] <= GAP_FRAMES]
        if before:
            before[0][1] = b
        elif b - a >= min_frames:
            spans.append([a, b])
    return sorted((a, b) for a, b in spans if b - a >= min_frames)


def _bends(times: np.ndarray, contour: np.ndarray, key: int, active: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """A note's pitch bend (semitones from its key) per frame: the contour's peak within a
    semitone and a third of the key, refined by a parabola through it and its neighbours,
    median-smoothed; where the key's activity is weak (a bridged gap, the tail) or the
    contour flat, the last clear value holds."""
    centre = key * CONTOUR_BINS + CONTOUR_CENTRE
    lo = max(1, centre - BEND_HALF_WIDTH)
    hi = min(contour.shape[1] - 1, centre + BEND_HALF_WIDTH + 1)
    w = contour[:, lo:hi]
    k = np.argmax(w, 1) + lo
    rows = np.arange(contour.shape[0])
    left, mid, right = contour[rows, k - 1], contour[rows, k], contour[rows, k + 1]
    curve = left - 2 * mid + right
    shift = np.where(curve < -1e-6, 0.5 * (left - right) / np.where(curve < -1e-6, curve, -1.0),
                     0.0)
    bend = (k + np.clip(shift, -0.5, 0.5) - centre) / CONTOUR_BINS
    clear = (mid > 1e-3) & (active >= FRAME_THRESHOLD)
    if not clear.any():
        return times.astype(np.float64), np.zeros_like(bend)
    last = np.maximum.accumulate(np.where(clear, np.arange(bend.size), -1))
    bend = np.where(last >= 0, bend[np.maximum(last, 0)], bend[np.argmax(clear)])
    if bend.size >= 5:
        bend = scipy.ndimage.median_filter(bend, 5, mode="mirror")  # no edge outlier wins
    return times.astype(np.float64), np.clip(bend, -1.5, 1.5)
