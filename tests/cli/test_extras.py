"""Without the optional extras: the core commands work, and a command that needs one exits 2
with one line naming its install command. Each runs in a fresh process in which importing any
module of the extras fails as if it were not installed."""

import subprocess
import sys
import textwrap

import pytest

BLOCKED = ("lightning", "fastapi", "starlette", "uvicorn", "multipart", "python_multipart",
           "matplotlib", "sounddevice")

WRAPPER = textwrap.dedent(f"""
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    from fastddsp.cli.main import main

    main()
""")


@pytest.fixture
def without_extras(tmp_path):
    wrapper = tmp_path / "without_extras.py"
    wrapper.write_text(WRAPPER)

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(wrapper), *argv], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
    return run


def test_core_commands_need_no_extra(without_extras, tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("time_s,f0_hz,loudness_db\n" +
                   "".join(f"{i / 100:.2f},440,-20\n" for i in range(50)))
    r = without_extras("synth", str(csv), "-o", str(tmp_path / "o.wav"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.wav").stat().st_size > 1000
    r = without_extras("models")
    assert r.returncode == 0, r.stderr
    assert "violin-tiny" in r.stdout


@pytest.mark.parametrize(("argv", "extra"), [
    (["train", "DATA", "-o", "x.fddsp"], "train"),
    (["app", "--port", "0"], "app"),
    (["live", "--seconds", "0.1"], "live"),
    (["live", "--list-devices"], "live"),
])
def test_a_missing_extra_is_one_line_naming_its_install(without_extras, argv, extra):
    r = without_extras(*argv)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"fastddsp {argv[0]} needs the [{extra}] extra: pip install 'fastddsp[{extra}]'"]
