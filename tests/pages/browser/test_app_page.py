"""The web app served by uvicorn on a free loopback port, driven in headless Chromium, under
the app's Content-Security-Policy (a violation is a console error, which fails a test)."""

import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf
import uvicorn

from fastddsp.pages.app import create_app
from tests.conftest import tone


@pytest.fixture(scope="module")
def app_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(max_upload_mb=5.0,
                                       trusted_hosts=["127.0.0.1", "localhost"]),
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        thread.join(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)
    sock.close()


def wait_until(page, expression: str, timeout: float = 30000) -> None:
    """Poll ``expression`` in the page until it is truthy. (``page.wait_for_function`` evaluates
    it with eval, which the app's Content-Security-Policy forbids; ``page.evaluate`` is not
    subject to it.)"""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} ms: {expression}"
        page.wait_for_timeout(50)


def open_app(page, url):
    page.goto(url)
    wait_until(page, "document.querySelectorAll('#model option').length > 0")


def choose(page, model="violin-tiny", pitch="fast", octave="0"):
    page.select_option("#instrument", model.split("-")[0])
    page.select_option("#model", model)
    page.select_option("#pitch", pitch)
    page.select_option("#octave", octave)


def test_app_transfers_an_upload_and_plays_it(page, app_url, tmp_path):
    wav = tmp_path / "tone.wav"
    sf.write(wav, tone(440.0, 1.5), 16000)
    open_app(page, app_url)
    assert page.eval_on_selector("#model", "s => s.value") == "violin-tiny"  # the default
    assert page.eval_on_selector("#pitch", "s => s.value") == "crepe-tiny"
    page.set_input_files("#file", str(wav))
    choose(page)
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=60000)
    assert page.is_hidden("#error")
    src = page.get_attribute("#result-audio", "src")
    assert src.startswith("/api/result/")
    assert page.get_attribute("#download", "download") == "tone.violin-tiny.wav"
    info = page.inner_text("#result-info")
    assert "1.50 s at 16000 Hz" in info and "violin-tiny" in info and "no octave shift" in info

    page.evaluate("async () => { const a = document.getElementById('result-audio');"
                  " a.muted = true; await a.play(); }")
    wait_until(page, "document.getElementById('result-audio').currentTime > 0.1",
               timeout=10000)
    assert page.evaluate("document.getElementById('result-audio').duration") == pytest.approx(
        1.5, abs=0.01)
    wait_until(page, "['plot-features', 'plot-spectrogram'].every(id => "
               "document.getElementById(id).complete && "
               "document.getElementById(id).naturalWidth > 0)")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "tone.violin-tiny.wav"
    y, sr = sf.read(download.value.path())
    assert sr == 16000 and abs(y.size - 24000) <= 64
    assert page.console.errors() == []


def test_app_shows_a_bad_upload_as_a_message(page, app_url, tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_text("this is text, not audio")
    open_app(page, app_url)
    page.set_input_files("#file", str(bad))
    choose(page)
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=30000)
    message = page.inner_text("#error")
    assert message.startswith("cannot read x.wav as audio")
    assert "\n" not in message.strip()
    body = page.inner_text("body")
    assert "Traceback" not in body and "File \"" not in body
    assert page.is_hidden("#result")
    # the browser logs the 400 answer itself; nothing else may fail
    assert page.console.errors(allowed=("status of 400",)) == []


def test_a_new_error_clears_the_previous_result(page, app_url, tmp_path):
    good, bad = tmp_path / "tone.wav", tmp_path / "x.wav"
    sf.write(good, tone(440.0, 1.0), 16000)
    bad.write_text("this is text, not audio")
    open_app(page, app_url)
    page.set_input_files("#file", str(good))
    choose(page)
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=60000)
    page.set_input_files("#file", str(bad))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=30000)
    assert page.is_hidden("#result")  # the old result is not left under the new error
    assert page.get_attribute("#result-audio", "src") is None
    assert page.inner_text("#result-info") == ""
    assert page.console.errors(allowed=("status of 400",)) == []


def test_app_records_from_the_microphone_as_wav(page, app_url):
    open_app(page, app_url)
    page.click("#record")
    wait_until(page, "document.getElementById('record-status').textContent"
               ".includes('recording')")
    page.wait_for_timeout(1500)
    page.click("#stop")
    page.wait_for_selector("#recording:not([hidden])")
    wait_until(page, "document.getElementById('recording').readyState >= 1")
    seconds = page.evaluate("document.getElementById('recording').duration")
    assert 1.0 < seconds < 5.0
    assert page.inner_text("#record-status").startswith("recorded")
    # what the page would upload is a plain 16-bit PCM WAV the server decodes (read from the
    # page's `recorded` Blob itself: the CSP's connect-src does not allow fetching blob: URLs)
    header = page.evaluate("""async () => {
        const b = new Uint8Array(await recorded.slice(0, 44).arrayBuffer());
        return Array.from(b);
    }""")
    head = bytes(header)
    assert head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt " and head[34] == 16
    choose(page)
    page.click("#submit")
    wait_until(page, "!document.getElementById('result').hidden || "
               "!document.getElementById('error').hidden", timeout=60000)
    # the fake microphone plays beeps: either they are transferred, or the page says why not
    if page.is_visible("#error"):
        assert "no confidently pitched sound" in page.inner_text("#error")
    else:
        assert page.get_attribute("#result-audio", "src").startswith("/api/result/")
    assert page.console.errors(allowed=("status of 400",)) == []
    assert np.isfinite(seconds)
