"""Tracker accuracy on real recordings from ../shared/data (skipped when absent), against
CREPE-full. Thresholds sit a little under the figures measured on all clips (docs/features.md)."""

import numpy as np
import pytest

from fastddsp.features.loudness import frame_centres
from fastddsp.features.metrics import pitch_agreement
from fastddsp.features.pitch import PITCH_RATE, TRACKERS, track
from fastddsp.io import read_audio

# clip -> minimum raw pitch accuracy of (crepe-tiny, fast) against crepe-full
CASES = {"trumpet/trumpet_3.wav": (0.97, 0.95), "violin/violin_6.wav": (0.93, 0.88)}


@pytest.mark.parametrize("clip", list(CASES))
def test_tracker_accuracy_against_crepe_full(shared_data, clip):
    audio, _ = read_audio(shared_data / clip, PITCH_RATE)
    centres = frame_centres(audio.size, PITCH_RATE, 100)
    ref_f0, ref_conf = track(audio, centres, "crepe-full")
    voiced = ref_conf >= TRACKERS["crepe-full"].voicing_threshold
    assert voiced.mean() > 0.5
    for tracker, minimum in zip(("crepe-tiny", "fast"), CASES[clip], strict=True):
        est, _ = track(audio, centres, tracker)
        m = pitch_agreement(ref_f0, voiced, est)
        assert m["rpa"] >= minimum, (tracker, m)
        assert m["octave"] <= 0.06, (tracker, m)
    # and CREPE-full itself is right about the key: median pitch is a plausible note
    assert 150 < np.median(ref_f0[voiced]) < 1500
