import numpy as np

from fastddsp.score import DEMO_MELODY, Note, notes_to_features


def test_notes_become_pitch_and_loudness_curves():
    feats = notes_to_features([Note(69, 0.0, 1.0), Note(72, 1.5, 1.0)], 250.0)
    t = feats.times
    mid1 = (t > 0.3) & (t < 0.9)
    midi = 69 + 12 * np.log2(feats.f0_hz / 440)
    assert np.all(np.abs(midi[mid1] - 69) < 0.3)  # vibrato stays within 25 cents
    assert np.ptp(midi[mid1]) > 0.2               # ... and is there
    rest = (t > 1.2) & (t < 1.45)
    assert np.all(feats.loudness_db[rest] == -80.0)
    assert np.all(np.abs(midi[rest] - 69) < 1e-3)  # pitch held through the rest
    assert feats.loudness_db[mid1].min() > -25


def test_demo_melody_range():
    feats = notes_to_features(DEMO_MELODY, 250.0)
    assert feats.f0_hz.min() > 550 and feats.f0_hz.max() < 950
