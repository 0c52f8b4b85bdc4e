"""Input a hostile or careless user gives the CLI: every case is refused with one line and exit
code 2 (or handled), nothing half-written is left, and no input is overwritten."""

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from fastddsp.cli.main import run
from tests.conftest import tone

FASTDDSP = [sys.executable, "-m", "fastddsp"]


def one_line_exit_2(capsys, argv: list[str], match: str) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("score", "match"), [
    ("A4 1e12 1", "at most 86400 s"),
    ("A4 0 nan", "finite"),
    ("A4 0 inf", "finite"),
    ("G12 0 1", "outside 0..127"),
    ("C-5 0 1", "outside 0..127"),
    ("300 0 1", "outside 0..127"),
    ("A4 0 1 1.5", "velocity"),
])
def test_render_refuses_scores_outside_the_valid_ranges(tmp_path, capsys, score, match):
    path = tmp_path / "s.txt"
    path.write_text(f"C4 0 0.5\n{score}\n")
    out = tmp_path / "o.wav"
    one_line_exit_2(capsys, ["render", str(path), "-o", str(out)], match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"]


def _midi(path: Path, ticks_per_beat: int, tempo: int, length_ticks: int) -> Path:
    mid = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("note_on", note=60, velocity=64, time=0))
    track.append(mido.Message("note_off", note=60, velocity=64, time=length_ticks))
    mid.save(str(path))
    return path


@pytest.mark.parametrize(("ticks", "tempo", "length", "match"), [
    (0, 500000, 480, "cannot read"),                 # 0 ticks per beat
    (1, 16777215, 2 ** 27, "at most 86400 s"),       # a 40-byte file of 54 days
])
def test_render_refuses_broken_or_absurd_midi(tmp_path, capsys, ticks, tempo, length, match):
    path = _midi(tmp_path / "m.mid", ticks, tempo, length)
    assert path.stat().st_size < 100
    one_line_exit_2(capsys, ["render", str(path), "-o", str(tmp_path / "o.wav")], match)
    assert not (tmp_path / "o.wav").exists()


def test_render_of_a_file_that_is_no_score_says_so(tmp_path, capsys):
    junk = tmp_path / "song.txt"
    junk.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(300)))
    one_line_exit_2(capsys, ["render", str(junk), "-o", str(tmp_path / "o.wav")],
                    "neither a MIDI file")


@pytest.mark.parametrize(("rows", "match"), [
    ([(0, 1e9, -20), (0.004, 440, -20)], "f0 must be"),
    ([(0, 440, 1e6), (0.004, 440, -20)], "loudness must be"),
    ([(0, 440, -20), (1e-9, 440, -20), (2e-9, 440, -20), (90000, 440, -20)], "0..86400 s"),
])
def test_synth_refuses_controls_outside_the_valid_ranges(tmp_path, capsys, rows, match):
    csv = tmp_path / "f.csv"
    csv.write_text("time_s,f0_hz,loudness_db\n" + "\n".join(",".join(map(str, r))
                                                            for r in rows) + "\n")
    one_line_exit_2(capsys, ["synth", str(csv), "-o", str(tmp_path / "o.wav")], match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]


@pytest.mark.parametrize("command", ["transfer", "features"])
@pytest.mark.parametrize("scale", [1e30, float(np.finfo(np.float32).max)])
def test_absurdly_scaled_audio_is_refused(tmp_path, capsys, command, scale):
    src = tmp_path / "loud.wav"
    sf.write(src, (tone(440, 1.0) * np.float32(scale / 0.5)).clip(-3e38, 3e38), 16000,
             subtype="FLOAT")
    out = tmp_path / ("o.wav" if command == "transfer" else "o.csv")
    one_line_exit_2(capsys, [command, str(src), "-o", str(out), "--pitch", "fast"], "magnitude")
    assert not out.exists()


def test_a_one_hertz_wav_is_refused(tmp_path, capsys):
    src = tmp_path / "slow.wav"
    sf.write(src, np.zeros(600, np.float32), 1, subtype="PCM_16")
    assert src.stat().st_size < 1300  # 1.2 KB declaring 10 minutes
    one_line_exit_2(capsys, ["transfer", str(src), "-o", str(tmp_path / "o.wav")], "1 Hz")


def test_a_damaged_mp3_gives_our_line_only(tmp_path):
    src = tmp_path / "tune.mp3"
    sf.write(src, tone(440, 2.0), 16000, format="MP3")
    data = bytearray(src.read_bytes())
    rng = random.Random(3)
    for _ in range(60):
        data[rng.randrange(1000, len(data))] = rng.randrange(256)
    src.write_bytes(bytes(data))
    proc = subprocess.run(FASTDDSP + ["features", str(src), "-o", str(tmp_path / "f.csv"),
                                      "--pitch", "fast"], capture_output=True, text=True)
    assert "resync" not in proc.stderr and "Note:" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") <= 1


def test_transfer_never_overwrites_a_later_input(tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "a.violin-tiny.wav"
    sf.write(a, tone(440, 0.5), 16000)
    sf.write(b, tone(330, 0.5), 16000)
    before = b.read_bytes()
    one_line_exit_2(capsys, ["transfer", str(a), str(b), "-o", str(tmp_path), "--pitch", "fast"],
                    "is the input file")
    assert b.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.violin-tiny.wav", "a.wav"]


def test_transfer_refuses_two_inputs_with_one_output(tmp_path, capsys):
    sf.write(tmp_path / "c.wav", tone(440, 0.5), 16000)
    sf.write(tmp_path / "c.flac", tone(330, 0.5), 16000)
    out = tmp_path / "out"
    out.mkdir()
    one_line_exit_2(capsys, ["transfer", str(tmp_path / "c.wav"), str(tmp_path / "c.flac"),
                             "-o", str(out), "--pitch", "fast"], "would both be written")
    assert list(out.iterdir()) == []


@pytest.fixture
def tiny_file(tmp_path):
    from fastddsp import load
    return load("violin-tiny").save(tmp_path / "m.fddsp")


@pytest.mark.parametrize("argv", [
    ["export", "{m}", "--format", "onnx", "-o", "{m}"],
    ["export", "{m}", "--format", "chain-onnx", "-o", "{m}"],
    ["quantize", "{m}", "{data}", "-o", "{m}"],
    ["train", "{data}", "--init", "{m}", "-o", "{m}"],
    ["train", "{data}", "--teacher", "{m}", "-o", "{m_stem}"],
])
def test_commands_refuse_to_write_over_their_input_model(tmp_path, capsys, tiny_file, argv):
    before = tiny_file.read_bytes()
    data = tmp_path / "data"
    data.mkdir()
    argv = [a.format(m=tiny_file, data=data, m_stem=tiny_file.with_suffix("")) for a in argv]
    one_line_exit_2(capsys, argv, "refusing to overwrite")
    assert tiny_file.read_bytes() == before


def test_export_refuses_to_replace_a_bundled_model_file(tmp_path, capsys):
    from fastddsp.models import bundled_models

    target = bundled_models()["violin-tiny"]
    before = target.read_bytes()
    one_line_exit_2(capsys, ["export", "violin-tiny", "-o", str(target)], "refusing")
    assert target.read_bytes() == before


def test_eval_refuses_to_write_over_its_source_clips(tmp_path, capsys):
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(440, 0.5), 16000)
    before = clip.read_bytes()
    one_line_exit_2(capsys, ["eval", "violin-tiny", str(tmp_path), "-o", str(tmp_path)],
                    "refusing to overwrite")
    assert clip.read_bytes() == before


def test_a_file_named_like_a_bundled_model_does_not_replace_it(tmp_path, monkeypatch, capsys):
    import fastddsp
    from fastddsp import ModelFileError, UnknownModelError
    from fastddsp.models import bundled_models

    monkeypatch.chdir(tmp_path)
    Path("violin-tiny").write_bytes(b"not the bundled model")
    Path("mine").write_bytes(b"a file without suffix")
    model = fastddsp.load("violin-tiny")
    assert model.decoder_parameters == fastddsp.load(bundled_models()["violin-tiny"]) \
        .decoder_parameters
    with pytest.raises(ModelFileError):  # a path is a path
        fastddsp.load("./violin-tiny")
    with pytest.raises(UnknownModelError, match=r"write \./mine"):
        fastddsp.load("mine")
    assert run(["info", "violin-tiny"]) == 0
    assert "tiny" in capsys.readouterr().out


def test_an_interrupted_write_leaves_no_temp_file_behind(tmp_path):
    folder = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal
        from fastddsp.atomic import atomic_path
        with atomic_path({str(folder / 'song.wav')!r}) as tmp:
            tmp.write_bytes(b"x" * 100000)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    stale = [p for p in folder.iterdir() if p.name.startswith(".")]
    assert len(stale) == 1 and stale[0].stat().st_size == 100000
    live = folder / f".other.wav.{os.getpid()}.tmp-abc.wav"  # a write still going on
    live.write_bytes(b"y")
    score = tmp_path / "s.txt"
    score.write_text("A4 0 0.2\n")
    assert run(["render", str(score), "-o", str(folder / "melody.wav")]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [live.name, "melody.wav"]


def _peak_rss_mib(argv: list[str]) -> float:
    """Peak resident memory of a fresh ``fastddsp`` process running ``argv``."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking (pytest) process
    script = ("import re, sys\nfrom pathlib import Path\nfrom fastddsp.cli.main import run\n"
              f"rc = run({argv!r})\n"
              "status = Path('/proc/self/status').read_text()\n"
              "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024)\n"
              "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_render_and_synth_stream_long_outputs_in_bounded_memory(tmp_path):
    """Six times the length costs little more memory: the audio is streamed to the file (the
    frame-rate curves, 1/64 of its size, are kept). Before, a 30-minute score held its whole
    rendering (and its resampled copy) in memory: 300+ MB more."""
    def score(minutes: int) -> Path:
        path = tmp_path / f"{minutes}.txt"
        path.write_text("".join(f"{('A4', 'C5', 'E5')[i % 3]} {i * 0.5:.1f} 0.45\n"
                                for i in range(minutes * 120)))
        return path

    def controls(minutes: int) -> Path:  # four rows spanning the whole length
        path = tmp_path / f"{minutes}.csv"
        path.write_text(f"time_s,f0_hz,loudness_db\n0,440,-20\n0.004,440,-20\n"
                        f"0.008,440,-20\n{60 * minutes},440,-20\n")
        return path

    for make, command in ((score, "render"), (controls, "synth")):
        short, long = (_peak_rss_mib([command, str(make(m)), "-o", str(tmp_path / f"{m}.flac")])
                       for m in (5, 30))
        print(f"{command}: peak RSS 5 min {short:.0f} MiB, 30 min {long:.0f} MiB")
        assert long - short < 60, (command, short, long)
        info = sf.info(str(tmp_path / "30.flac"))
        assert abs(info.duration - 1800) < 1


def test_a_feature_file_never_holds_nan_or_infinity(tmp_path):
    from fastddsp import UserError
    from fastddsp.features.frames import Features, write_features_csv

    ones = np.ones(4, np.float32)
    bad = Features(ones * 440, np.array([-20, np.inf, -20, -20], np.float32), ones, 250.0)
    with pytest.raises(UserError, match="loudness_db"):
        write_features_csv(tmp_path / "f.csv", bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("option", "match"), [
    (["--octave", "99"], "octave must be auto or within -4..4"),
    (["--pitch-shift", "200"], "pitch shift must be within ±24 semitones"),
    (["--loudness", "500"], "loudness must be auto, none or within ±60 dB"),
])
def test_transfer_refuses_adjustments_beyond_the_valid_ranges(tmp_path, capsys, option, match):
    src = tmp_path / "in.wav"
    sf.write(src, tone(440.0, 1.0), 16000)
    one_line_exit_2(capsys, ["transfer", str(src), "-o", str(tmp_path / "o.wav"), "--pitch",
                             "fast", *option], match)
    assert not (tmp_path / "o.wav").exists()


def test_no_command_writes_a_clipped_sample(tmp_path, capsys):
    # the loudest controls the ranges allow: the limiter holds every sample under -1 dBFS, says
    # so in one line, and the output starts from silence (no click)
    rows = "\n".join(f"{t / 250:.3f},440,40" for t in range(500))
    (tmp_path / "f.csv").write_text("time_s,f0_hz,loudness_db\n" + rows + "\n")
    src = tmp_path / "in.wav"
    sf.write(src, tone(440.0, 2.0, amplitude=0.9), 16000)
    runs = {"synth": ["synth", str(tmp_path / "f.csv"), "-o", str(tmp_path / "s.wav")],
            "transfer": ["transfer", str(src), "-o", str(tmp_path / "t.wav"), "--pitch", "fast",
                         "--loudness", "60", "--octave", "4"],
            "live": ["live", "--input-file", str(src), "--output-file", str(tmp_path / "l.wav"),
                     "--loudness", "40", "--octave", "2"]}
    for name, argv in runs.items():
        assert run(argv) == 0, name
        out = capsys.readouterr().out
        audio, _ = sf.read(tmp_path / f"{name[0]}.wav")
        assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1 / 32768, name
        assert "peaks limited by up to" in out, (name, out)
        assert np.abs(audio[:8]).max() < 0.05, name  # the first 0.5 ms: the fade-in
