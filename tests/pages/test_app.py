import io
import logging
import socket
import tempfile

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from fastddsp.cli.main import run
from fastddsp.features import extract_features
from fastddsp.pages.app import server
from fastddsp.pages.app.server import INTERNAL_ERROR, ResultStore, create_app
from tests.conftest import tone


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def median_f0(audio: np.ndarray, rate: int) -> float:
    f = extract_features(audio, rate, pitch="fast", frame_rate=100.0, cache=False)
    voiced = (f.confidence >= 0.8) & (f.loudness_db > -60)
    assert voiced.mean() > 0.5
    return float(np.median(f.f0_hz[voiced]))


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(max_upload_mb=1.0)) as c:
        yield c


def post(client, content: bytes, name: str = "a.wav", **fields):
    data = {"model": "violin-tiny", "pitch": "fast", **fields}
    return client.post("/api/transfer", files={"file": (name, content, "audio/wav")}, data=data)


def test_options_list_the_bundled_models_by_instrument(client):
    opts = client.get("/api/options").json()
    violin = [m["name"] for m in opts["instruments"]["violin"]]
    assert violin == ["violin-full", "violin-cnn", "violin-tiny", "violin-cnn-q", "violin-tiny-q",
                      "violin-cnn-48k", "violin-cnn-48k-q", "violin-tiny-48k",
                      "violin-tiny-48k-q"]  # the 48 kHz ones after, by name
    assert {"fast", "crepe-tiny"} <= {t["name"] for t in opts["trackers"]}
    assert opts["default_tracker"] == "crepe-tiny" and opts["max_upload_mb"] == 1.0


@pytest.mark.parametrize(("octave", "rate", "expected_hz"), [
    ("0", 16000, 440.0), ("1", 22050, 880.0)])
def test_transfer_returns_a_wav_at_the_input_rate_with_the_input_melody(client, octave, rate,
                                                                        expected_hz):
    x = tone(440.0, 1.5, sr=rate)
    r = post(client, wav_bytes(x, rate), octave=octave)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["sample_rate"] == rate and info["model"] == "violin-tiny"
    assert info["adjustment"]["octaves"] == int(octave)
    assert info["adjustment"]["voiced_share"] > 0.9
    for plot in info["plots"].values():
        assert plot.startswith("data:image/png;base64,") and len(plot) > 1000
    audio = client.get(info["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    y, sr = sf.read(io.BytesIO(audio.content), dtype="float32")
    assert sr == rate and y.size == info["samples"]
    assert abs(y.size - x.size) <= rate / 250  # within one model frame of the input
    assert np.abs(y).max() > 0.01
    f0 = median_f0(y, sr)
    assert abs(12 * np.log2(f0 / expected_hz)) < 0.3, f0
    dl = client.get(info["download_url"])
    assert dl.content == audio.content
    assert dl.headers["content-disposition"] == 'attachment; filename="a.violin-tiny.wav"'


def test_loudness_offset_changes_the_level(client):
    x = wav_bytes(tone(330.0, 1.0), 16000)
    quiet = post(client, x, octave="0", loudness="-20").json()
    loud = post(client, x, octave="0", loudness="0").json()
    assert quiet["adjustment"]["loudness"] == "-20 dB"

    def rms(info):
        y, _ = sf.read(io.BytesIO(client.get(info["audio_url"]).content))
        return float(np.sqrt(np.mean(y ** 2)))
    assert 20 * np.log10(rms(loud) / rms(quiet)) > 10


@pytest.mark.parametrize(("content", "fields", "message"), [
    (b"this is not audio", {}, "cannot read x.wav as audio"),
    (b"", {}, "the uploaded file is empty"),
    (None, {}, "choose an audio file or record one first"),
    ("silence", {}, "no confidently pitched sound"),
    ("tone", {"model": "/etc/passwd"}, "unknown model '/etc/passwd'"),
    ("tone", {"model": ""}, "choose a model"),
    ("tone", {"octave": "high"}, "octave must be 'auto' or an integer, not 'high'"),
    ("tone", {"loudness": "loud"}, "loudness must be auto, none or a number of dB"),
    ("tone", {"octave": "9"}, "octave must be auto or within -4..4"),
    ("tone", {"loudness": "999"}, "loudness must be auto, none or within"),
    ("tone", {"pitch": "guess"}, "unknown pitch tracker 'guess'"),
])
def test_bad_input_is_a_one_line_400(client, content, fields, message):
    if content is None:
        r = client.post("/api/transfer", data={"model": "violin-tiny"})
    else:
        audio = {"silence": np.zeros(16000, np.float32), "tone": tone(440.0, 1.0)}
        body = wav_bytes(audio[content], 16000) if isinstance(content, str) else content
        r = post(client, body, name="x.wav", **fields)
    assert r.status_code == 400
    error = r.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error
    assert "fastddsp-app-" not in error  # names the upload, not the temporary file


def test_upload_over_the_limit_is_413_whether_its_length_is_given_or_not(client):
    big = b"\0" * 1_200_000
    r = post(client, big)
    assert r.status_code == 413
    assert r.json()["error"] == "the upload is larger than this app's limit of 1 MB"
    boundary = "xyzzy"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
    body = head.encode() + big + f"\r\n--{boundary}--\r\n".encode()
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))  # sent chunked
    r = client.post("/api/transfer", content=chunks,
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "limit of 1 MB" in r.json()["error"]


def test_uploads_live_in_temporary_files_removed_after_the_request(client, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    original = server.Transferer.run

    def spy(self, path, *args, **kwargs):
        seen.append((path, path.is_file(), path.read_bytes()[:4]))
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(server.Transferer, "run", spy)
    assert post(client, wav_bytes(tone(440.0, 1.0), 16000), octave="0").status_code == 200
    assert post(client, b"junk", name="x.wav").status_code == 400
    assert [(p.parent.parent, ok, head) for p, ok, head in seen] == [
        (tmp_path, True, b"RIFF"), (tmp_path, True, b"junk")]
    assert list(tmp_path.iterdir()) == []


def test_internal_errors_are_a_generic_line_and_logged(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(server.Transferer, "run", broken)
    with caplog.at_level(logging.ERROR, logger="fastddsp.pages.app"):
        r = post(client, wav_bytes(tone(440.0, 1.0), 16000))
    assert r.status_code == 500 and r.json() == {"error": INTERNAL_ERROR}
    assert "secret detail" in caplog.text


def test_pages_results_and_hosts(client):
    page = client.get("/")
    assert page.status_code == 200 and "<form id=\"transfer-form\"" in page.text
    for asset in ("app.js", "style.css", "recorder-worklet.js"):
        assert client.get(f"/static/{asset}").status_code == 200
    missing = client.get("/api/result/nope")
    assert missing.status_code == 404 and "no longer kept" in missing.json()["error"]
    assert client.get("/no/such/page").json() == {"error": "Not Found"}
    with TestClient(create_app(trusted_hosts=["127.0.0.1"]),
                    base_url="http://evil.example") as c:
        assert c.get("/").status_code == 400
    with TestClient(create_app(trusted_hosts=["127.0.0.1"]), base_url="http://127.0.0.1") as c:
        assert c.get("/").status_code == 200


def test_result_store_keeps_the_most_recent():
    store = ResultStore(max_items=2, max_bytes=10)
    a = store.put(b"123", "a.wav")
    b = store.put(b"456", "b.wav")
    c = store.put(b"789", "c.wav")
    assert store.get(a) is None and store.get(b).wav == b"456" and store.get(c).wav == b"789"
    d = store.put(b"0123456789", "d.wav")  # over max_bytes with the others: they go
    assert len(store) == 1 and store.get(d) is not None


def test_cli_refuses_bad_settings_in_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [(["--port", "70000"], "--port must be within"),
                 (["--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
                 (["--port", "0", "--max-upload-mb", "0"], "--port must be within"),
                 (["--max-upload-mb", "-1", "--port", str(port)], "--max-upload-mb must be"),
                 (["--max-seconds", "nan"], "--max-seconds within")]
        for args, message in cases:
            assert run(["app", *args]) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1, err
