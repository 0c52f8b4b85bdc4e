import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from fastddsp.cli.main import run


def write_csv(path, rows, header="time_s,f0_hz,loudness_db"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


@pytest.fixture
def model_file(tmp_path):
    from fastddsp import Model
    return Model.from_preset("tiny").save(tmp_path / "tiny.fddsp")


def test_synth_writes_audio_of_the_csv_duration(tmp_path, model_file):
    # 100 frames/s for 2 s, with a confidence column in between: resampled to 250 frames/s
    t = np.arange(200) / 100
    csv = write_csv(tmp_path / "f.csv", [(f"{x:.2f}", 440, 1.0, -20) for x in t],
                    header="time_s,f0_hz,confidence,loudness_db")
    out = tmp_path / "o.wav"
    assert run(["synth", str(csv), "--model", str(model_file), "-o", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 16000
    assert audio.shape[0] == 500 * 64  # 200 frames at 100/s = 2 s = 500 model frames
    assert np.abs(audio).max() > 0


@pytest.mark.parametrize(("content", "model", "msg"), [
    (None, "tiny.fddsp", "does not exist"),
    ("", "tiny.fddsp", "empty"),
    ("time_s,f0_hz\n0,440\n", "tiny.fddsp", "lacks column"),
    ("time_s,f0_hz,loudness_db\n0,440,-20\n0.004,nan,-20\n", "tiny.fddsp", "NaN"),
    ("time_s,f0_hz,loudness_db\n0,440,-20\n0.004,x,-20\n", "tiny.fddsp", "non-numeric"),
    ("time_s,f0_hz,loudness_db\n0,440,-20\n0.004,440,-20\n", "no-such-model", "unknown model"),
])
def test_synth_bad_input_exits_2_without_output(tmp_path, model_file, capsys, content, model,
                                                msg):
    csv = tmp_path / "f.csv"
    if content is not None:
        csv.write_text(content)
    out = tmp_path / "o.wav"
    model_arg = str(model_file) if model == "tiny.fddsp" else model
    assert run(["synth", str(csv), "--model", model_arg, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_info_prints_parameter_count(capsys):
    assert run(["info", "tiny"]) == 0
    assert "decoder_parameters: 2,446" in capsys.readouterr().out
    assert run(["info", "cnn", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["decoder_parameters"] == 313_726
    assert info["config"]["sample_rate"] == 16000 and info["frame_rate"] == 250


def test_info_of_a_model_file(capsys, model_file):
    assert run(["info", str(model_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["preset"] == "tiny"


def test_unknown_command_and_model_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        run(["frobnicate"])
    assert e.value.code == 2
    assert run(["info", "violin-huge"]) == 2


def test_demo_writes_page_and_audio(tmp_path):
    assert run(["demo", "-o", str(tmp_path / "demo")]) == 0
    page = (tmp_path / "demo" / "index.html").read_text()
    wavs = sorted((tmp_path / "demo").glob("*.wav"))
    assert len(wavs) >= 3
    for w in wavs:
        assert w.name in page
        audio, sr = sf.read(w)  # each model's own rate
        assert sr == (48000 if "-48k" in w.name else 16000) and audio.shape[0] > sr * 4


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "fastddsp", "info", "tiny"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "2,446" in r.stdout


def test_models_lists_the_bundled_models(capsys):
    import fastddsp
    assert run(["models"]) == 0
    out = capsys.readouterr().out
    for name in fastddsp.bundled_models():
        assert name in out
    assert "presets for new models: full, cnn, tiny" in out


def test_version(capsys):
    import fastddsp

    with pytest.raises(SystemExit) as exit_:
        run(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastddsp {fastddsp.__version__}"


@pytest.mark.parametrize("command", ["transfer", "render", "live", "synth"])
def test_help_names_the_default_model(command, capsys):
    with pytest.raises(SystemExit):
        run([command, "-h"])
    assert "(defaultviolin-tiny)" in "".join(capsys.readouterr().out.split())


def test_transfer_says_which_model_played_and_the_octave_it_chose(tmp_path, capsys):
    from tests.conftest import tone

    src = tmp_path / "voice.wav"
    sf.write(src, tone(330.0, 1.5), 16000)  # E4: a violin plays it where it is
    assert run(["transfer", str(src), "-o", str(tmp_path / "v.wav"), "--pitch", "fast"]) == 0
    out = capsys.readouterr().out
    assert "played by violin-tiny (octave shift +0 chosen by --octave auto" in out, out


def test_transfer_render_features_show_progress_on_a_terminal_unless_quiet(tmp_path, capsys,
                                                                      monkeypatch):
    import sys

    from tests.conftest import tone

    src = tmp_path / "in.wav"
    sf.write(src, tone(330.0, 3.0), 16000)
    score = tmp_path / "s.txt"
    score.write_text("A4 0 1\nC5 1 1.5\n")
    runs = [["transfer", str(src), "-o", str(tmp_path / "t.wav"), "--pitch", "fast"],
            ["render", str(score), "-o", str(tmp_path / "r.wav")],
            ["features", str(src), "--pitch", "fast", "--no-cache", "-o",
             str(tmp_path / "f.csv")]]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for argv, bars in zip(runs, (["fast pitch", "synthesis"], ["render"], ["fast pitch"]),
                          strict=True):
        assert run(argv) == 0
        err = capsys.readouterr().err
        for bar in bars:  # each pass's bar reaches its whole length, and no further
            shown = [int(p) for p in re.findall(rf"{bar}:\s+(\d+)%", err)]
            assert shown and max(shown) == 100 and "s audio" in err, err
        assert run([*argv, "--quiet"]) == 0
        assert capsys.readouterr().err == ""


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_an_interrupt_at_any_moment_is_one_line_and_exit_130(tmp_path, delay):
    import signal
    import time

    from tests.conftest import tone

    src = tmp_path / "in.wav"
    sf.write(src, tone(330.0, 20.0), 16000)
    # as from a terminal: a suite started in the background (`pytest &` in a script) has SIGINT
    # ignored, and a child would inherit that and never see the interrupt
    proc = subprocess.Popen([sys.executable, "-m", "fastddsp", "transfer", str(src), "-o",
                             str(tmp_path / "o.wav"), "--pitch", "crepe-full"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)  # 0.3 s: PyTorch is still loading; 1 s: loading or tracking pitch
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "fastddsp: interrupted", err
    assert not (tmp_path / "o.wav").exists()


def test_the_trackers_defaults_differ_for_a_stated_reason(capsys):
    helps = {}
    for command in ("features", "prepare", "transfer"):
        with pytest.raises(SystemExit):
            run([command, "-h"])
        helps[command] = "".join(capsys.readouterr().out.split())  # argparse wraps at "-"
    assert "(defaultcrepe-full:themostaccurate" in helps["features"]
    assert "(defaultcrepe-full:themostaccurate" in helps["prepare"]
    assert "(defaultcrepe-tiny:4.5xrealtimeon1thread;crepe-full,thedefaultoffeaturesand" \
           "prepare,isthemostaccurate" in helps["transfer"]
