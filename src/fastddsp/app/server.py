"""The web app's server: a static page (``static/``) and a small JSON API.

- ``GET /api/options``: the bundled models (by instrument), pitch trackers and limits;
- ``POST /api/transfer`` (multipart: ``file``, ``model``, ``octave``, ``loudness``, ``pitch``):
  timbre transfer of the upload; answers JSON with the result's URL, what was adjusted and
  PNG plots (data URLs), or ``{"error": "one line"}`` with status 400 (bad input, the
  ``UserError`` text), 413 (upload over the limit) or 500 (internal: a generic line; the
  traceback goes to the server log only);
- ``GET /api/result/{id}``: the result as a 16-bit wav (``?download=1``: as an attachment).

An upload is copied to a temporary folder that is removed when the request ends; results live
in memory only, the last few of them (``ResultStore``). Transfers run one at a time.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import logging
import re
import secrets
import shutil
import socket
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..errors import UserError

log = logging.getLogger("fastddsp.app")

STATIC = Path(str(resources.files("fastddsp") / "app" / "static"))
MB = 1_000_000
FORM_OVERHEAD = 64 * 1024          # multipart headers and the small fields beside the file
DRAIN_LIMIT = 512 * MB             # read (and drop) at most this much of an oversized body
INTERNAL_ERROR = "internal error: the transfer failed (the details are in the server log)"
OCTAVE_RANGE = range(-4, 5)
LOUDNESS_RANGE_DB = 60.0


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@dataclass
class StoredResult:
    wav: bytes
    filename: str


class ResultStore:
    """The most recent results, in memory: at most ``max_items`` and ``max_bytes`` in all
    (the oldest go first)."""

    def __init__(self, max_items: int = 8, max_bytes: int = 512 * MB):
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[str, StoredResult] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, wav: bytes, filename: str) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = StoredResult(wav, filename)
            while len(self._items) > self.max_items or (
                    len(self._items) > 1
                    and sum(len(r.wav) for r in self._items.values()) > self.max_bytes):
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> StoredResult | None:
        with self._lock:
            return self._items.get(key)

    def __len__(self) -> int:
        return len(self._items)


def model_choices() -> dict[str, list[dict[str, str]]]:
    """Instrument -> its bundled models (name and variant), variants in the thesis' order."""
    from ..models import bundled_models
    from ..report import KINDS, model_kind

    out: dict[str, list[dict[str, str]]] = {}
    for name in bundled_models():
        instrument, _, variant = name.partition("-")
        out.setdefault(instrument, []).append({"name": name, "variant": variant or name})
    for models in out.values():
        models.sort(key=lambda m: KINDS.index(k) if (k := model_kind(m["name"])) else len(KINDS))
    return out


class _TooLarge(Exception):
    pass


class _CountingReceive:
    """An ASGI ``receive`` that raises ``_TooLarge`` once the body passes ``limit`` bytes."""

    def __init__(self, receive: Callable[[], Awaitable[dict[str, Any]]], limit: int):
        self.receive, self.limit, self.seen, self.done = receive, limit, 0, False

    async def _next(self) -> dict[str, Any]:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
        else:  # the client went away
            self.done = True
        return message

    async def __call__(self) -> dict[str, Any]:
        message = await self._next()
        if self.seen > self.limit:
            raise _TooLarge
        return message

    async def drain(self) -> None:
        """Read the rest of the body (up to DRAIN_LIMIT) so the browser sees the answer rather
        than a connection reset."""
        while not self.done and self.seen <= DRAIN_LIMIT:
            await self._next()


def _form_text(form: Any, name: str, default: str) -> str:
    value = form.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise UserError(f"the field {name!r} must be text")
    return value.strip()


def _png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")[:60] or "audio"


class Transferer:
    """Runs transfers one at a time with the bundled models (each loaded once)."""

    def __init__(self, max_seconds: float):
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._models: dict[str, Any] = {}

    def _model(self, name: str):
        from ..models import bundled_models, load

        bundled = bundled_models()
        if name not in bundled:
            raise UserError(f"unknown model {name!r}; choose one of "
                            f"{', '.join(bundled) or '(none bundled)'}")
        if name not in self._models:
            self._models[name] = load(name)
        return self._models[name]

    def run(self, path: Path, upload_name: str, model: str, octave: str, loudness: str,
            pitch: str) -> dict[str, Any]:
        from ..features import extract_features
        from ..features.pitch import get_tracker
        from ..io import read_audio, resample
        from ..plots import Curve, features_png, spectrogram_png
        from ..timbre_transfer import parse_loudness, parse_octave, transfer_features

        tracker = get_tracker(pitch)
        try:
            oct_value, loud_value = parse_octave(octave), parse_loudness(loudness)
        except UserError as e:  # the CLI's wording names options; the page has fields
            raise UserError(str(e).replace("--", "")) from None
        if oct_value != "auto" and oct_value not in OCTAVE_RANGE:
            raise UserError(f"octave must be auto or within {OCTAVE_RANGE[0]}..{OCTAVE_RANGE[-1]}")
        if isinstance(loud_value, float) and not abs(loud_value) <= LOUDNESS_RANGE_DB:
            raise UserError(f"loudness must be auto, none or within ±{LOUDNESS_RANGE_DB:g} dB")
        with self._lock:
            m = self._model(model)
            try:
                audio, rate = read_audio(path)
            except UserError as e:  # name the upload, not the temporary file
                raise UserError(str(e).replace(str(path), upload_name)) from None
            seconds = audio.size / rate
            if seconds > self.max_seconds:
                raise UserError(f"the recording is {seconds:.0f} s long; this app takes at most "
                                f"{self.max_seconds:g} s")
            feats = extract_features(audio, rate, pitch=pitch, frame_rate=m.frame_rate,
                                     loudness_rate=m.sample_rate, cache=False)
            chunks, adj, adjusted = transfer_features(feats, m, oct_value, 0.0, loud_value,
                                                      pitch)
            out = resample(np.concatenate(list(chunks)), m.sample_rate, rate)
        buf = io.BytesIO()
        sf.write(buf, np.clip(out, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
        thr = tracker.voicing_threshold
        plot = features_png([Curve("input", feats, thr, "#222222"),
                             Curve(f"given to {model}", adjusted, thr, "#d62728")])
        return {
            "wav": buf.getvalue(),
            "filename": f"{_safe_stem(upload_name)}.{model}.wav",
            "info": {
                "model": model, "pitch": pitch, "sample_rate": rate, "samples": int(out.size),
                "seconds": out.size / rate, "input_seconds": seconds,
                "adjustment": {"octaves": adj.octaves, "loudness": adj.loudness_mode,
                               "voiced_share": adj.voiced_share},
                "plots": {"features": _png_data_url(plot),
                          "spectrogram": _png_data_url(spectrogram_png(out, rate))},
            },
        }


def _check_limits(max_upload_mb: float, max_seconds: float) -> None:
    if not 0 < max_upload_mb <= 10_000 or not 0 < max_seconds <= 24 * 3600:
        raise UserError("--max-upload-mb must be within (0, 10000] and --max-seconds within "
                        "(0, 86400]")


def create_app(max_upload_mb: float = 50.0, max_seconds: float = 300.0,
               trusted_hosts: list[str] | None = None, results: ResultStore | None = None
               ) -> FastAPI:
    """The app. ``trusted_hosts``: Host header values accepted (None: any), which guards a
    loopback-bound server against DNS rebinding."""
    from ..features.pitch import TRACKERS

    _check_limits(max_upload_mb, max_seconds)
    limit = int(max_upload_mb * MB)
    store = results if results is not None else ResultStore()
    transferer = Transferer(max_seconds)
    app = FastAPI(title="fastddsp", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.results = store

    if trusted_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail).splitlines()[0])

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "bad request: the form is incomplete or malformed")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, INTERNAL_ERROR)

    def too_large() -> JSONResponse:
        return _error(413, f"the upload is larger than this app's limit of {max_upload_mb:g} MB")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/options")
    async def options() -> dict[str, Any]:
        from ..timbre_transfer import DEFAULT_MODEL

        choices = model_choices()
        names = [m["name"] for models in choices.values() for m in models]
        default = DEFAULT_MODEL if DEFAULT_MODEL in names else (names[0] if names else None)
        return {"instruments": choices, "default_model": default,
                "trackers": [{"name": t.name, "description": t.description}
                             for t in TRACKERS.values()],
                "default_tracker": "crepe-tiny", "max_upload_mb": max_upload_mb,
                "max_seconds": max_seconds,
                "octaves": list(OCTAVE_RANGE), "max_loudness_db": LOUDNESS_RANGE_DB}

    @app.post("/api/transfer")
    async def transfer(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        counter = _CountingReceive(request.receive, limit + FORM_OVERHEAD)
        if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
            await counter.drain()
            return too_large()
        try:
            form = await Request(request.scope, counter).form(max_files=1, max_fields=8)
        except _TooLarge:
            await counter.drain()
            return too_large()
        except HTTPException as e:  # a malformed multipart body
            return _error(400, f"bad upload: {str(e.detail).splitlines()[0]}")
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise UserError("choose an audio file or record one first")
            if upload.size is not None and upload.size > limit:
                return too_large()
            if upload.size == 0:
                raise UserError("the uploaded file is empty")
            fields = {"model": _form_text(form, "model", ""),
                      "octave": _form_text(form, "octave", "auto"),
                      "loudness": _form_text(form, "loudness", "auto"),
                      "pitch": _form_text(form, "pitch", "crepe-tiny")}
            if not fields["model"]:
                raise UserError("choose a model")
            if fields["pitch"] not in TRACKERS:
                raise UserError(f"unknown pitch tracker {fields['pitch']!r}; choose from "
                                f"{', '.join(TRACKERS)}")
            name = upload.filename or "upload.wav"
            suffix = Path(name).suffix.lower()
            suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""
            with tempfile.TemporaryDirectory(prefix="fastddsp-app-") as tmp:
                path = Path(tmp) / f"upload{suffix}"
                with open(path, "wb") as f:
                    await run_in_threadpool(shutil.copyfileobj, upload.file, f, 1 << 20)
                result = await run_in_threadpool(transferer.run, path, name, **fields)
        except UserError as e:
            return _error(400, str(e).splitlines()[0] if str(e) else "bad input")
        except MemoryError:
            log.error("out of memory in a transfer")
            return _error(500, "internal error: out of memory (try a shorter recording)")
        except Exception:
            log.exception("transfer failed")
            return _error(500, INTERNAL_ERROR)
        finally:
            await form.close()
        key = store.put(result["wav"], result["filename"])
        return JSONResponse({**result["info"], "filename": result["filename"],
                             "audio_url": f"/api/result/{key}",
                             "download_url": f"/api/result/{key}?download=1"})

    @app.get("/api/result/{key}")
    async def result(key: str, download: bool = False) -> Response:
        item = store.get(key)
        if item is None:
            return _error(404, "this result is no longer kept: run the transfer again")
        headers = {"Cache-Control": "no-store"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{item.filename}"'
        return Response(item.wav, media_type="audio/wav", headers=headers)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 50.0,
          max_seconds: float = 300.0) -> None:
    """Run the app with uvicorn until interrupted."""
    import sys

    import uvicorn

    if not 0 < port < 65536:
        raise UserError("--port must be within 1..65535")
    _check_limits(max_upload_mb, max_seconds)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"cannot listen on {host!r}: unknown address") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e} (pick another "
                            f"--port)") from None
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loopback = _is_loopback(host)
    trusted = ["127.0.0.1", "localhost", "[::1]", "::1"] if loopback else None
    app = create_app(max_upload_mb, max_seconds, trusted_hosts=trusted)
    if not loopback:
        print(f"warning: listening on {host}: other computers can reach this app",
              file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"fastddsp app on http://{shown}:{port}/ (Ctrl+C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
