"""Headless Chromium for the browser tests: Debian's chromium driven by Python playwright
(never a browser that playwright downloads). The tests skip, saying why, when either is
missing. Screenshots go to ``test-artifacts/`` at the repository root."""

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM_ARGS = [
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",       # allow the microphone without asking
    "--use-fake-device-for-media-stream",   # ... and make it a synthetic one
    "--mute-audio",
]


def find_chromium() -> str | None:
    env = os.environ.get("FASTDDSP_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -e '.[dev]'); browser tests skipped")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no chromium found (apt-get install chromium, or set FASTDDSP_CHROMIUM); "
                    "browser tests skipped")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Console:
    """What a page reported: console messages, uncaught errors, failed requests."""

    def __init__(self, page):
        self.messages: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        page.on("console", lambda m: self.messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed_requests.append(
            f"{r.url}: {r.failure}"))

    def errors(self, allowed: tuple[str, ...] = ()) -> list[str]:
        errors = [text for kind, text in self.messages if kind == "error"
                  and not any(a in text for a in allowed)]
        return errors + self.page_errors + self.failed_requests


@pytest.fixture
def page(browser, request):
    """A fresh page (its own context) whose console is recorded; a full-page screenshot named
    after the test is saved when the test ends, passed or failed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    pg = context.new_page()
    pg.console = Console(pg)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
