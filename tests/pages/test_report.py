import functools
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fastddsp.cli.main import run
from fastddsp.errors import UserError
from fastddsp.pages import report as report_module
from fastddsp.pages.report import build_report, load_eval_dir, model_kind, order_rows
from fastddsp.training.evaluate import evaluate_outputs
from tests.evalfolders import make_eval_dirs, write_bench


class PageParser(HTMLParser):
    """Rows of the listening grid: (row label, [audio src per cell]), and every img src."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.columns: list[str] = []
        self._in_grid_head = self._in_col = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "audio-row" in (a.get("class") or ""):
            self.rows.append((a["data-row"], []))
        elif tag == "audio":
            self.rows[-1][1].append(a["src"])
            self.links.append(a["src"])
        elif tag == "img":
            self.images.append(a["src"])
            self.links.append(a["src"])
        elif tag == "table" and a.get("class") == "grid":
            self._in_grid_head = True
        elif tag == "th" and self._in_grid_head and a.get("scope") == "col":
            self._in_col = True

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_grid_head = False
        if tag == "th":
            self._in_col = False

    def handle_data(self, data):
        if self._in_col and data.strip():
            self.columns.append(data.strip())


def parse(page: Path) -> PageParser:
    p = PageParser()
    p.feed((page / "index.html").read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    root = tmp_path_factory.mktemp("evals")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTDDSP_CACHE", str(root / "cache"))
        refs, dirs = make_eval_dirs(root)
    return root, refs, dirs


def test_page_has_a_row_per_model_a_column_per_clip_and_local_files(evals, tmp_path):
    root, refs, dirs = evals
    bench = write_bench(tmp_path / "bench.json")
    r = build_report(dirs, tmp_path / "page", bench=bench, pitch="fast")
    assert r.rows == ["reference", "violin-full", "violin-tiny", "violin-tiny-q"]
    assert r.clips == ["take0", "take1"]
    page = parse(tmp_path / "page")
    assert page.columns == ["take0", "take1"]
    assert [label for label, _ in page.rows] == r.rows
    assert all(len(srcs) == 2 for _, srcs in page.rows)
    # 4 rows x 2 clips spectrograms + one f0/loudness plot per clip
    assert len(page.images) == 4 * 2 + 2
    for link in page.links:  # relative, inside the folder, and there
        assert not link.startswith(("/", "http", "file:")) and ".." not in link
        assert (tmp_path / "page" / link).is_file()
    for img in page.images:
        assert (tmp_path / "page" / img).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the page's audio is the eval's audio, byte for byte; the reference too
    ref_src = page.rows[0][1][0]
    assert (tmp_path / "page" / ref_src).read_bytes() == (refs / "take0.wav").read_bytes()
    tiny_src = page.rows[2][1][1]
    assert (tmp_path / "page" / tiny_src).read_bytes() == (
        root / "eval-violin-tiny" / "take1.wav").read_bytes()

    html_text = (tmp_path / "page" / "index.html").read_text(encoding="utf-8")
    scores = json.loads((root / "eval-violin-full" / "scores.json").read_text())
    assert f"{scores['mean']['spectral_distance']:.3f}" in html_text
    assert f"{scores['clips'][1]['spectral_distance']:.3f}" in html_text
    # speed: the 1-thread end-to-end figure of the bench file, only where it has one
    assert "1,234×" in html_text and "2,000" not in html_text and "9,999" not in html_text
    assert r.speeds["violin-tiny"].realtime_factor == 1234.0
    assert r.speeds["violin-full"] is None and "speed: not measured" in html_text
    meta = json.loads((tmp_path / "page" / "report.json").read_text())
    assert meta["generator"] == "fastddsp report"
    assert [row["label"] for row in meta["rows"]] == r.rows


def test_measured_speed_is_labelled_as_measured(evals, tmp_path, monkeypatch):
    _, _, dirs = evals
    quick = functools.partial(report_module.measure_speed, seconds=0.25, runs=1)
    monkeypatch.setattr(report_module, "measure_speed", quick)
    r = build_report(dirs[2:], tmp_path / "page", measure=True, pitch="fast")
    speed = r.speeds["violin-tiny"]
    assert speed is not None and 0 < speed.realtime_factor < float("inf")
    assert "timed by the report" in speed.how
    assert "timed by the report" in (tmp_path / "page" / "index.html").read_text()


def test_previous_report_is_replaced_other_folders_refused(evals, tmp_path):
    _, _, dirs = evals
    out = tmp_path / "page"
    build_report(dirs[:1], out, pitch="fast")
    build_report(dirs, out, pitch="fast")  # a previous report: replaced
    assert len(parse(out).rows) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page"]  # no temporary folders left

    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        build_report(dirs, other, pitch="fast")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    with pytest.raises(UserError, match="inside the page folder"):
        build_report([dirs[0]], dirs[0].parent, pitch="fast")


def test_a_failure_leaves_the_previous_page_and_no_half_page(evals, tmp_path, monkeypatch):
    _, _, dirs = evals
    out = tmp_path / "page"
    build_report(dirs[:1], out, pitch="fast")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return b"\x89PNG\r\n\x1a\n"

    monkeypatch.setattr(report_module, "spectrogram_png", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(dirs, out, pitch="fast")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page"]
    calls.clear()
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(dirs, tmp_path / "new", pitch="fast")
    assert not (tmp_path / "new").exists()


def test_outputs_mode_folder_finds_its_audio_and_references(tmp_path):
    refs, outs = tmp_path / "refs", tmp_path / "outs"
    refs.mkdir()
    outs.mkdir()
    t = np.arange(16000) / 16000
    for i, f in enumerate((220.0, 330.0)):
        x = (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)
        sf.write(refs / f"c{i}.wav", x, 16000)
        sf.write(outs / f"c{i}.cnn_tiny_q.wav", x, 16000)
        sf.write(outs / f"c{i}.full.wav", x, 16000)
    ev_q, ev_full = tmp_path / "ev-q", tmp_path / "ev-full"
    evaluate_outputs(outs, refs, tag="cnn_tiny_q", score_pitch="fast", out_dir=ev_q)
    evaluate_outputs(outs, refs, tag="full", score_pitch="fast", out_dir=ev_full)
    assert json.loads((ev_q / "scores.json").read_text())["tag"] == "cnn_tiny_q"
    r = build_report([ev_q, ev_full], tmp_path / "page", pitch="fast")
    assert r.rows == ["reference", "full", "cnn_tiny_q"]
    page = parse(tmp_path / "page")
    assert all(len(srcs) == 2 for _, srcs in page.rows)


def test_old_scores_need_references_and_bad_inputs_are_one_line_errors(evals, tmp_path, capsys):
    _, refs, dirs = evals
    old = tmp_path / "old-eval"
    old.mkdir()
    for f in dirs[0].iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    scores = json.loads((old / "scores.json").read_text())
    for key in ("references", "split"):
        scores.pop(key)
    (old / "scores.json").write_text(json.dumps(scores))
    with pytest.raises(UserError, match="--references"):
        build_report([old], tmp_path / "page", pitch="fast")
    build_report([old], tmp_path / "page", references=refs, pitch="fast")

    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "scores.json").write_text("{not json")
    (tmp_path / "bench.json").write_text('{"a": 1}')
    cases = [
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(tmp_path / "empty")], "no scores.json"),
        ([str(tmp_path / "bad")], "cannot read"),
        ([str(dirs[0]), "--bench", str(tmp_path / "bench.json")], "not a `fastddsp bench"),
        ([str(dirs[0]), "--references", str(tmp_path / "nowhere")], "does not exist"),
    ]
    for args, msg in cases:
        assert run(["report", *args, "-o", str(tmp_path / "p2"), "--pitch", "fast"]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert not (tmp_path / "p2").exists()
    (dirs[0] / "take1.wav").rename(tmp_path / "moved.wav")
    try:
        assert run(["report", str(dirs[0]), "-o", str(tmp_path / "p2"), "--pitch", "fast"]) == 2
        assert "no audio for clip 'take1'" in capsys.readouterr().err
    finally:
        (tmp_path / "moved.wav").rename(dirs[0] / "take1.wav")


def test_cli_writes_the_page(evals, tmp_path, capsys):
    _, _, dirs = evals
    out = tmp_path / "page"
    assert run(["report", *map(str, dirs), "-o", str(out), "--pitch", "fast"]) == 0
    text = capsys.readouterr().out
    assert "4 rows (reference, violin-full, violin-tiny, violin-tiny-q) x 2 clips" in text
    assert "no speed for violin-full, violin-tiny, violin-tiny-q" in text
    assert (out / "index.html").is_file()


@pytest.mark.parametrize(("label", "kind"), [
    ("violin-full", "full"), ("trumpet-cnn", "cnn"), ("violin-tiny", "tiny"),
    ("cnn_tiny", "tiny"), ("violin-cnn-q", "cnn-q"), ("cnn_q", "cnn-q"),
    ("violin-tiny-q", "tiny-q"), ("cnn_tiny_q", "tiny-q"), ("model", None), ("fully", None),
])
def test_model_kind(label, kind):
    assert model_kind(label) == kind


def test_rows_follow_the_thesis_order_then_the_given_one(evals):
    _, _, dirs = evals
    loaded = [load_eval_dir(d) for d in dirs]
    for d, label in zip(loaded, ("mine", "tiny-q", "full"), strict=True):
        d.label = label
    assert [d.label for d in order_rows(loaded)] == ["full", "tiny-q", "mine"]


def test_references_from_a_prepared_data_folder(evals, tmp_path):
    from fastddsp.models import load
    from fastddsp.training.data import prepare_dataset
    from fastddsp.training.evaluate import evaluate_model

    _, refs, _ = evals
    data = tmp_path / "data"
    prepare_dataset(refs, data, pitch="fast", example_seconds=1.0, hop_seconds=0.5)
    ev = tmp_path / "eval"
    evaluate_model(load("violin-tiny"), data, out_dir=ev, split="all", score_pitch="fast",
                   label="violin-tiny")
    assert json.loads((ev / "scores.json").read_text())["split"] == "all"
    r = build_report([ev], tmp_path / "page", pitch="fast")
    assert r.clips == ["take0", "take1"]
    page = parse(tmp_path / "page")
    ref_wav = tmp_path / "page" / page.rows[0][1][0]
    ref, sr = sf.read(ref_wav, dtype="float32")
    original, _ = sf.read(refs / "take0.wav", dtype="float32")
    assert sr == 16000 and abs(ref.size - original.size) <= 64
    n = min(ref.size, original.size)
    assert np.abs(ref[:n] - original[:n]).max() < 1e-3  # the data folder's copy of the clip
