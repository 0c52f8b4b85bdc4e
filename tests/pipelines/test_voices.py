"""Polyphony: note events -> voices -> one room, offline and streamed."""

import tracemalloc

import mido
import numpy as np
import pytest

from fastddsp.models import load
from fastddsp.pipelines.score import Note, NoteEvent, note_events, read_midi_tracks
from fastddsp.pipelines.voices import Voices, needed_voices, render_tracks
from fastddsp.realtime.poly import PolyStream

SR = 16000


def render(events, model, voices=None):
    return np.concatenate(list(render_tracks([(events, model)], voices)))


def peak_db(audio: np.ndarray, hz: float, a: float, b: float) -> float:
    """The spectrum's level near ``hz`` in ``audio[a s, b s)``, dB."""
    seg = audio[int(a * SR): int(b * SR)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    f = np.fft.rfftfreq(seg.size, 1 / SR)
    near = np.abs(f - hz) < 8
    return float(20 * np.log10(spec[near].max()))


def steps(audio: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(audio))


@pytest.fixture(scope="module")
def tiny():
    return load("violin-tiny")


def test_two_notes_sound_both_fundamentals_at_their_own_level(tiny):
    a4, e5 = 440.0, 440.0 * 2 ** (7 / 12)
    both = render(note_events([Note(69, 0.1, 1.2), Note(76, 0.1, 1.2)]), tiny)
    alone = render(note_events([Note(69, 0.1, 1.2)]), tiny)
    # each fundamental within 1.5 dB of the same note played alone, far above an absent one
    assert peak_db(both, a4, 0.5, 1.2) == pytest.approx(peak_db(alone, a4, 0.5, 1.2), abs=1.5)
    assert peak_db(both, e5, 0.5, 1.2) > peak_db(alone, e5, 0.5, 1.2) + 20
    assert peak_db(both, e5, 0.5, 1.2) > peak_db(both, a4, 0.5, 1.2) - 10


def test_velocity_and_pitch_bend_are_played(tiny):
    loud = render(note_events([Note(69, 0.1, 1.0, velocity=1.0)]), tiny)
    soft = render(note_events([Note(69, 0.1, 1.0, velocity=0.5)]), tiny)
    rms = [20 * np.log10(np.sqrt(np.mean(x[int(0.5 * SR): SR] ** 2))) for x in (loud, soft)]
    assert 2.0 < rms[0] - rms[1] < 10.0          # -6 dB of loudness, as the model plays it
    bent = render([NoteEvent(0.1, "on", 0, 69, 0.8), NoteEvent(0.05, "bend", 0, 0, 2.0),
                   NoteEvent(1.1, "off", 0, 69)], tiny)
    b4 = 440.0 * 2 ** (2 / 12)
    assert peak_db(bent, b4, 0.5, 1.0) > peak_db(bent, 440.0, 0.5, 1.0) + 20


def test_a_chord_released_note_by_note_ends_without_clicks(tiny):
    notes = [Note(62, 0.1, 0.8), Note(66, 0.1, 1.1), Note(69, 0.1, 1.4), Note(74, 0.1, 1.7)]
    y = render(note_events(notes), tiny)
    own = steps(y[int(0.4 * SR): int(0.85 * SR)]).max()   # the chord's own steepest step
    for n in notes:
        end = n.start_s + n.duration_s
        around = steps(y[int((end - 0.02) * SR): int((end + 0.2) * SR)])
        assert around.max() <= own
    assert np.abs(y[-SR // 10:]).max() < 0.05 * np.abs(y).max()  # released: the room's tail


def test_voice_stealing_takes_the_longest_released_voice_then_the_oldest():
    pool = Voices(2, 250.0)
    pool.apply(NoteEvent(0, "on", 0, 60, 0.8), 0)
    pool.apply(NoteEvent(0, "on", 0, 64, 0.8), 10)
    pool.apply(NoteEvent(0, "off", 0, 60), 20)
    pool.apply(NoteEvent(0, "on", 0, 67, 0.8), 25)   # 60 still releasing: its voice is taken
    assert pool.note.tolist() == [67, 64]
    assert pool.start_gain[0] > 0.1                   # from the level it had: a glide
    pool.apply(NoteEvent(0, "on", 0, 71, 0.8), 30)    # both held: the oldest (64) goes
    assert pool.note.tolist() == [67, 71]
    pool.apply(NoteEvent(0, "on", 0, 67, 0.5), 40)    # the same note again: its own voice
    assert pool.note.tolist() == [67, 71] and pool.on.tolist() == [40, 30]


def test_stealing_and_allocation_never_step(tiny):
    notes = [Note(60 + 3 * i, 0.1 + 0.15 * i, 0.9) for i in range(8)]
    events = note_events(notes)
    y = render(events, tiny, voices=2)                   # 8 overlapping notes on 2 voices
    assert needed_voices(events, 250.0) == 7
    own = steps(y[int(0.3 * SR):]).max()
    for n in notes:                                       # every onset (a steal from the 3rd)
        around = steps(y[int(n.start_s * SR) - 64: int(n.start_s * SR) + 640])
        assert around.max() <= own
    held = steps(y[int(1.2 * SR): int(1.6 * SR)]).max()  # the steepest step while playing
    assert steps(y[int(0.2 * SR):int(1.25 * SR)]).max() <= 1.5 * held


def test_the_sustain_pedal_holds_released_notes(tiny):
    pedal = [NoteEvent(0.05, "sustain", 0, 0, 1.0), NoteEvent(0.1, "on", 0, 69, 0.8),
             NoteEvent(0.4, "off", 0, 69), NoteEvent(1.0, "sustain", 0, 0, 0.0)]
    spans = ((0.2, 0.35), (0.7, 0.95), (1.3, 1.4))
    y = render(pedal, tiny)
    level = [np.sqrt(np.mean(y[int(a * SR): int(b * SR)] ** 2)) for a, b in spans]
    unheld = render(pedal[1:3], tiny)
    free = [np.sqrt(np.mean(unheld[int(a * SR): int(b * SR)] ** 2)) for a, b in spans[:2]]
    assert level[1] > 0.5 * level[0]          # still sounding after its note-off
    assert free[1] < 0.2 * free[0]            # (without the pedal: released)
    assert level[2] < 0.2 * level[0]          # released when the pedal lifts


@pytest.mark.parametrize("name", ["violin-tiny", "violin-cnn"])
def test_the_stream_equals_offline_rendering_for_any_block_size(name):
    model = load(name)
    rng = np.random.default_rng(0)
    notes = [Note(int(rng.integers(55, 85)), float(rng.uniform(0, 1.5)),
                  float(rng.uniform(0.1, 0.8)), float(rng.uniform(0.3, 1.0)))
             for _ in range(10)]
    events = note_events(notes) + [NoteEvent(0.5, "bend", 0, 0, -1.0)]
    events.sort(key=lambda e: e.time_s)
    ref = render(events, model)
    for block in (32, 77, 256, 4096):
        stream = PolyStream(model, needed_voices(events, model.frame_rate))
        stream.schedule(events)
        count = -(-(ref.size + stream.latency) // block)
        out = np.concatenate([stream.play(block) for _ in range(count)])
        got = out[stream.latency: stream.latency + ref.size]
        assert np.abs(got - ref).max() < 1e-4, block
    assert np.abs(ref).max() > 0.1


@pytest.mark.parametrize("name", ["violin-tiny", "violin-cnn"])
def test_voices_decoding_only_their_notes_sound_as_decoding_every_frame(name):
    """In ONNX Runtime a voice's decoder runs only over its sounding frames (and the rests of
    voices between notes are skipped); the PyTorch stepper decodes every frame of every voice
    that is not still: the same audio, with rests inside blocks and voices that rest long."""
    model = load(name)
    notes = [Note(60 + 4 * (i % 5), 0.1 + 0.9 * i, 0.5, 0.8) for i in range(12)]  # 8 s+
    notes += [Note(48, 3.05, 2.0, 0.6), Note(79, 9.5, 0.3, 1.0)]                  # chords
    events = note_events(notes)
    rendered = {}
    for runtime in ("onnxruntime", "torch"):
        model.runtime = runtime
        rendered[runtime] = render(events, model)
    assert np.abs(rendered["onnxruntime"] - rendered["torch"]).max() < 2e-5
    assert np.abs(rendered["torch"]).max() > 0.1


def test_note_on_sounds_within_the_declared_latency(tiny):
    stream = PolyStream(tiny, 4)
    assert stream.max_note_latency <= 0.010 * SR      # the goal: 10 ms
    for _ in range(3):
        stream.play(100)                              # rendered ahead: mid-frame
    stream.note_on(69, 1.0)
    out = np.concatenate([stream.play(64) for _ in range(10)])
    first = int(np.argmax(np.abs(out) > 1e-4))
    assert 0 < first <= stream.max_note_latency


def test_two_hundred_overlapping_notes_render_in_bounded_memory(tiny):
    notes = [Note(40 + i % 60, 0.01 * i, 3.0, 0.6) for i in range(200)]
    tracemalloc.start()
    total = 0
    for chunk in render_tracks([(note_events(notes), tiny)], voices=64, block_frames=500):
        assert chunk.size <= 500 * 64 and np.all(np.isfinite(chunk))
        total += chunk.size
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == pytest.approx((2.0 + 3.0 + 0.12 + 0.3) * SR, abs=200)
    assert peak < 40e6  # a few blocks of 64 voices' controls and audio, not the whole score


def test_midi_tracks_keep_names_tempo_bends_and_pedal(tmp_path):
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                           mido.MetaMessage("set_tempo", tempo=1000000, time=960)])
    violin = mido.MidiTrack([mido.MetaMessage("track_name", name="Violin I"),
                             mido.Message("note_on", note=76, velocity=127, time=0),
                             mido.Message("note_on", note=79, velocity=64, time=0),
                             mido.Message("pitchwheel", pitch=4096, time=480),
                             mido.Message("control_change", control=64, value=127, time=0),
                             mido.Message("note_off", note=76, time=960),
                             mido.Message("note_on", note=79, velocity=0, time=0)])
    cello = mido.MidiTrack([mido.Message("note_on", note=48, velocity=90, channel=1,
                                         time=1920),
                            mido.Message("note_off", note=48, channel=1, time=480)])
    mid.tracks += [meta, violin, cello]
    mid.save(tmp_path / "q.mid")
    tracks = read_midi_tracks(str(tmp_path / "q.mid"), bend_range=2.0)
    assert [t.name for t in tracks] == ["Violin I", "track3"]
    kinds = [(e.kind, e.note, round(e.time_s, 6), round(e.value, 4)) for e in tracks[0].events]
    # 960 ticks at 0.5 s a beat, then 1 s a beat: the note-offs at 1 s + 1 s
    assert kinds == [("on", 76, 0.0, 1.0), ("on", 79, 0.0, round(64 / 127, 4)),
                     ("bend", 0, 0.5, 1.0), ("sustain", 0, 0.5, 1.0), ("off", 76, 2.0, 0.0),
                     ("off", 79, 2.0, 0.0)]
    assert [(e.kind, e.channel, e.time_s) for e in tracks[1].events] == [
        ("on", 1, 3.0), ("off", 1, 4.0)]
    single = mido.MidiFile(type=0)
    single.tracks.append(mido.MidiTrack(
        [mido.Message("note_on", note=60, channel=c, velocity=80, time=0) for c in (0, 2)]
        + [mido.Message("note_off", note=60, channel=c, time=240) for c in (0, 2)]))
    single.save(tmp_path / "s.mid")
    assert [t.name for t in read_midi_tracks(str(tmp_path / "s.mid"))] == ["channel1",
                                                                          "channel3"]


def test_a_scores_microtones_are_played(tiny):
    y = render(note_events([Note(69.5, 0.1, 1.2)]), tiny)   # a quarter tone above A4
    seg = y[int(0.5 * SR): int(1.2 * SR)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    f = np.fft.rfftfreq(seg.size, 1 / SR)
    fundamental = f[np.argmax(np.where(f < 600, spec, 0))]   # (vibrato: the carrier leads)
    assert abs(fundamental - 440 * 2 ** (0.5 / 12)) < 3.0     # 452.9 Hz, not A4's 440
