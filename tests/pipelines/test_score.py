import numpy as np

from fastddsp.pipelines.score import DEMO_MELODY, Note, notes_to_features


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


def _reference_curves(notes, frame_rate, vibrato_hz=5.5, vibrato_cents=25.0, attack_s=0.05,
                      release_s=0.12, glide_s=0.04):
    """f0 and loudness with every note's envelope and pitch computed over every frame of the
    score (what ``notes_to_features`` did before it looked only at the frames a note
    reaches)."""
    end = max(n.start_s + n.duration_s for n in notes) + release_s + 0.3
    t = np.arange(int(np.ceil(end * frame_rate))) / frame_rate
    midi, gain = np.full(t.size, np.nan), np.zeros(t.size)
    for note in sorted(notes, key=lambda n: n.start_s):
        local = t - note.start_s
        held = (local >= 0) & (local < note.duration_s)
        releasing = (local >= note.duration_s) & (local < note.duration_s + release_s)
        vib = np.clip((local - 0.2) / 0.3, 0, 1) * vibrato_cents / 100 * np.sin(
            2 * np.pi * vibrato_hz * local)
        midi[held] = note.midi + vib[held]
        midi[releasing & np.isnan(midi)] = note.midi
        env = np.where(held, np.clip(local / attack_s, 0, 1),
                       np.where(releasing, np.clip(1 - (local - note.duration_s) / release_s,
                                                   0, 1), 0.0))
        gain = np.maximum(gain, env * note.velocity)
    # rests hold the previous pitch (the first note's before it), then a moving-average glide
    filled = next(m for m in midi if not np.isnan(m))
    for i, m in enumerate(midi):
        filled = m if not np.isnan(m) else filled
        midi[i] = filled
    k = round(glide_s * frame_rate)
    midi = np.convolve(np.pad(midi, (k, k), mode="edge"), np.ones(2 * k + 1) / (2 * k + 1),
                       mode="valid")
    loud = np.where(gain > 1e-4, 20 * np.log10(np.maximum(gain, 1e-4)) - 20, -80.0)
    return 440.0 * 2 ** ((midi - 69) / 12), np.maximum(loud, -80.0)


def test_each_note_is_computed_on_its_own_frames_with_the_same_result():
    rng = np.random.default_rng(1)
    notes = [Note(float(rng.integers(40, 90)), float(rng.uniform(0, 20)),
                  float(rng.uniform(0.01, 3)), float(rng.uniform(0.1, 1))) for _ in range(60)]
    feats = notes_to_features(notes, 250.0)
    f0, loudness = _reference_curves(notes, 250.0)
    np.testing.assert_allclose(feats.f0_hz, f0.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(feats.loudness_db, loudness.astype(np.float32), rtol=1e-6)


def test_a_two_hour_score_has_every_frame():
    notes = [Note(69 + i % 5, 0.5 * i, 0.45) for i in range(14400)]
    feats = notes_to_features(notes, 250.0)
    assert feats.n_frames == int(np.ceil((7199.95 + 0.12 + 0.3) * 250))
    np.testing.assert_allclose(feats.f0_hz[int(3600.1 * 250)], 440.0, rtol=0.02)
