"""The listening page opened from disk in headless Chromium."""

import pytest

from fastddsp.pages.report import build_report
from tests.evalfolders import make_eval_dirs, write_bench


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-page")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTDDSP_CACHE", str(root / "cache"))
        _, dirs = make_eval_dirs(root, models=("violin-tiny-q", "violin-tiny"))
        build_report(dirs, root / "page", bench=write_bench(root / "bench.json"), pitch="fast")
    return root / "page" / "index.html"


def test_report_page_loads_from_disk_and_plays(page, report_page):
    page.goto(report_page.as_uri())
    page.wait_for_load_state("load")
    rows = page.locator("tr.audio-row")
    assert [rows.nth(i).get_attribute("data-row") for i in range(rows.count())] == [
        "reference", "violin-tiny", "violin-tiny-q"]
    assert page.locator("table.grid thead th[scope=col]").all_inner_texts() == ["take0", "take1"]
    for i in range(rows.count()):
        assert rows.nth(i).locator("audio").count() == 2
    assert page.locator("audio").count() == 6
    assert "1,234×" in page.locator("table.summary").inner_text()

    # every image (6 spectrograms, 2 f0/loudness plots) decoded
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    sizes = page.evaluate("Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 8 and all(w > 0 and h > 0 for w, h in sizes)

    # a model's clip plays: its time advances
    page.evaluate("""async () => {
        const a = document.querySelector("tr[data-row='violin-tiny'] audio");
        a.muted = true;
        await a.play();
    }""")
    page.wait_for_function(
        "document.querySelector(\"tr[data-row='violin-tiny'] audio\").currentTime > 0.1",
        timeout=10000)
    duration = page.evaluate("document.querySelector(\"tr[data-row='violin-tiny'] audio\")"
                             ".duration")
    assert duration == pytest.approx(1.0, abs=0.01)
    assert page.console.errors() == []
