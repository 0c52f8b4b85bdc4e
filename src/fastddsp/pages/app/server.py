"""The web app's server: a static page (``static/``) and a small JSON API.

- ``GET /api/options``: the bundled models (by instrument), pitch trackers and limits;
- ``POST /api/transfer`` (multipart: ``file``, ``model``, ``octave``, ``loudness``, ``pitch``):
  timbre transfer of the upload; answers JSON with the result's URL, what was adjusted and
  PNG plots (data URLs), or ``{"error": "one line"}`` with status 400 (bad input, the
  ``UserError`` text), 403 (a cross-origin request), 413 (upload over the limit) or 500
  (internal: a generic line; the traceback goes to the server log only);
- ``GET /api/result/{id}``: the result as a 16-bit wav (``?download=1``: as an attachment).

An upload is copied to a temporary folder that is removed when the request ends; results live
in memory only, the last few of them (``ResultStore``). Transfers run one at a time.

Protections (besides the upload limit above and, on a loopback address, the Host check
against DNS rebinding):

- decoding is bounded: an upload's header is read first and a recording longer than
  ``max_seconds``, or at a sample rate outside the range of ``limits``, is
  refused before any decoding; the rest is decoded block by block, mixed to mono as it comes,
  and refused as soon as more than ``max_seconds`` have been read (a header may understate
  the length or leave it unknown), so a small, highly compressed file cannot make the server
  decode hours of audio (``read_upload``);
- cross-site request forgery: a POST, PUT, PATCH or DELETE whose ``Origin`` (or, without
  one, ``Referer``) is not this server's own origin (the request's scheme and ``Host``) is
  refused with 403, ``Origin: null`` included; a request with neither header (curl, scripts)
  is served (``SecurityMiddleware``);
- every response carries a Content-Security-Policy that allows this server's own scripts,
  styles and requests only (plus the ``data:`` images of the plots and the ``blob:`` audio of
  a recording), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer`` and ``Cross-Origin-Resource-Policy: same-origin``;
- ``serve`` closes a connection whose request headers are not complete within
  ``header_timeout`` seconds of it opening (or of the previous response, on a kept-alive
  connection), against slow-header ("slowloris") clients, and answers 503 beyond
  ``max_connections`` open connections (``HeaderTimeoutH11Protocol``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import ipaddress
import logging
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import numpy as np
import soundfile as sf
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ...errors import UserError
from ...features import extract_features
from ...features.adjust import parse_loudness, parse_octave
from ...features.pitch import TRACKERS, get_tracker
from ...io import read_audio, resample
from ...limits import LOUDNESS_SHIFT_MAX_DB, OCTAVE_RANGE, check_adjustment
from ...models import bundled_models, load
from ...pipelines.output import finish, lufs, output_rate
from ...pipelines.transfer import DEFAULT_MODEL, transfer_features
from ..plots import Curve, features_png, spectrogram_png
from ..report import KINDS, model_kind

log = logging.getLogger("fastddsp.pages.app")

STATIC = Path(str(resources.files("fastddsp") / "pages" / "app" / "static"))
MB = 1_000_000
FORM_OVERHEAD = 64 * 1024          # multipart headers and the small fields beside the file
DRAIN_LIMIT = 512 * MB             # read (and drop) at most this much of an oversized body
INTERNAL_ERROR = "internal error: the transfer failed (the details are in the server log)"
HEADER_TIMEOUT = 10.0              # s: a connection's request headers must be complete by then
MAX_CONNECTIONS = 64               # open connections served at once; beyond: 503
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
CROSS_ORIGIN_ERROR = ("cross-origin request refused: this app accepts changes only from its own "
                      "page")
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",          # scripts, styles, fetch, the recorder worklet: this server
    "img-src 'self' data:",        # the plots are data: URLs, the icon is data:,
    "media-src 'self' blob:",      # the result is /api/result/..., a recording a blob: URL
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


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


def read_upload(path: Path, upload_name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    """An uploaded audio file -> mono float32 and its sample rate, in memory bounded by
    ``max_seconds`` (``io.read_audio``: the header is checked before decoding, the decoding
    stops past the limit whatever the header claimed). Every problem is a one-line
    ``UserError`` that names ``upload_name``, never the temporary file."""

    try:
        return read_audio(path, max_seconds=max_seconds)
    except UserError as e:
        raise UserError(str(e).replace(str(path), upload_name)) from None


class Transferer:
    """Runs transfers one at a time with the bundled models (each loaded once)."""

    def __init__(self, max_seconds: float):
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._models: dict[str, Any] = {}

    def _model(self, name: str):

        bundled = bundled_models()
        if name not in bundled:
            raise UserError(f"unknown model {name!r}; choose one of "
                            f"{', '.join(bundled) or '(none bundled)'}")
        if name not in self._models:
            self._models[name] = load(name)
        return self._models[name]

    def run(self, path: Path, upload_name: str, model: str, octave: str, loudness: str,
            pitch: str) -> dict[str, Any]:

        tracker = get_tracker(pitch)
        try:
            oct_value, loud_value = parse_octave(octave), parse_loudness(loudness)
        except UserError as e:  # the CLI's wording names options; the page has fields
            raise UserError(str(e).replace("--", "")) from None
        check_adjustment(oct_value, 0.0, loud_value)  # before the upload is decoded
        with self._lock:
            m = self._model(model)
            audio, rate = read_upload(path, upload_name, self.max_seconds)
            seconds = audio.size / rate
            feats = extract_features(audio, rate, pitch=pitch, frame_rate=m.frame_rate,
                                     loudness_rate=m.sample_rate, cache=False)
            chunks, adj, adjusted = transfer_features(feats, m, oct_value, 0.0, loud_value,
                                                      pitch)
            target = lufs(audio, rate) if adj.loudness_mode == "auto" else None
            out, _ = finish(np.concatenate(list(chunks)), m.sample_rate, target)
            rate_out = output_rate(rate, m.sample_rate)   # a 48 kHz model plays at 48 kHz
            out = resample(out, m.sample_rate, rate_out)
        buf = io.BytesIO()
        sf.write(buf, np.clip(out, -1.0, 1.0), rate_out, format="WAV", subtype="PCM_16")
        thr = tracker.voicing_threshold
        plot = features_png([Curve("input", feats, thr, "#222222"),
                             Curve(f"given to {model}", adjusted, thr, "#d62728")])
        return {
            "wav": buf.getvalue(),
            "filename": f"{_safe_stem(upload_name)}.{model}.wav",
            "info": {
                "model": model, "pitch": pitch, "sample_rate": rate_out,
                "samples": int(out.size), "seconds": out.size / rate_out,
                "input_seconds": seconds,
                "adjustment": {"octaves": adj.octaves, "loudness": adj.loudness_mode,
                               "voiced_share": adj.voiced_share},
                "plots": {"features": _png_data_url(plot),
                          "spectrogram": _png_data_url(
                              spectrogram_png(out, rate_out, max_hz=m.sample_rate / 2))},
            },
        }


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL or origin; None for anything else ("null")."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def same_origin(scope: Scope) -> bool:
    """Whether a request may change state here: it has neither ``Origin`` nor ``Referer`` (not
    a browser's cross-site request), or the first one present names this server's origin as
    the request addressed it (its scheme and ``Host`` header)."""
    headers = Headers(scope=scope)
    claimed = headers.get("origin")
    if claimed is None:
        claimed = headers.get("referer")
    if claimed is None:
        return True
    host = headers.get("host")
    own = _origin(f"{scope.get('scheme', 'http')}://{host}") if host else None
    return own is not None and _origin(claimed) == own


class SecurityMiddleware:
    """Refuses cross-origin state-changing requests (403, see ``same_origin``) and adds
    ``SECURITY_HEADERS`` to every response. Plain ASGI, so uploads stream through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        if scope["method"] in UNSAFE_METHODS and not same_origin(scope):
            log.warning("refused a cross-origin %s %s", scope["method"], scope.get("path"))
            await _error(403, CROSS_ORIGIN_ERROR)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _check_limits(max_upload_mb: float, max_seconds: float) -> None:
    if not 0 < max_upload_mb <= 10_000 or not 0 < max_seconds <= 24 * 3600:
        raise UserError("--max-upload-mb must be within (0, 10000] and --max-seconds within "
                        "(0, 86400]")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as one JSON line: HTTP errors, malformed forms, and anything unexpected
    (logged, answered with a generic message)."""

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


def _too_large(max_upload_mb: float) -> JSONResponse:
    return _error(413, f"the upload is larger than this app's limit of {max_upload_mb:g} MB")


def _transfer_fields(form: Any) -> tuple[UploadFile, dict[str, str]]:
    """The upload and the transfer's settings from the form; a ``UserError`` says what is
    missing or wrong."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise UserError("choose an audio file or record one first")
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
    return upload, fields


async def _transfer_response(request: Request, limit: int, max_upload_mb: float,
                             transferer: Transferer, store: ResultStore) -> Response:
    """``POST /api/transfer``: the upload (within ``limit`` bytes, counted as it arrives)
    through the model, kept in ``store``; the answer names where to fetch it."""
    length = request.headers.get("content-length", "")
    counter = _CountingReceive(request.receive, limit + FORM_OVERHEAD)
    if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        await counter.drain()
        return _too_large(max_upload_mb)
    try:
        form = await Request(request.scope, counter).form(max_files=1, max_fields=8)
    except _TooLarge:
        await counter.drain()
        return _too_large(max_upload_mb)
    except HTTPException as e:  # a malformed multipart body
        return _error(400, f"bad upload: {str(e.detail).splitlines()[0]}")
    try:
        upload, fields = _transfer_fields(form)
        if upload.size is not None and upload.size > limit:
            return _too_large(max_upload_mb)
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


def create_app(max_upload_mb: float = 50.0, max_seconds: float = 300.0,
               trusted_hosts: list[str] | None = None, results: ResultStore | None = None
               ) -> FastAPI:
    """The app. ``trusted_hosts``: Host header values accepted (None: any), which guards a
    loopback-bound server against DNS rebinding."""

    _check_limits(max_upload_mb, max_seconds)
    limit = int(max_upload_mb * MB)
    store = results if results is not None else ResultStore()
    transferer = Transferer(max_seconds)
    app = FastAPI(title="fastddsp", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.results = store

    if trusted_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)
    app.add_middleware(SecurityMiddleware)  # added last: the outer one, so it sees every answer

    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/options")
    async def options() -> dict[str, Any]:

        choices = model_choices()
        names = [m["name"] for models in choices.values() for m in models]
        default = DEFAULT_MODEL if DEFAULT_MODEL in names else (names[0] if names else None)
        return {"instruments": choices, "default_model": default,
                "trackers": [{"name": t.name, "description": t.description}
                             for t in TRACKERS.values()],
                "default_tracker": "crepe-tiny", "max_upload_mb": max_upload_mb,
                "max_seconds": max_seconds,
                "octaves": list(OCTAVE_RANGE), "max_loudness_db": LOUDNESS_SHIFT_MAX_DB}

    @app.post("/api/transfer")
    async def transfer(request: Request) -> Response:
        return await _transfer_response(request, limit, max_upload_mb, transferer, store)

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


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a limit on how long a connection may take to send its
    request headers (uvicorn has none: a client that sends a header line now and then holds
    its connection forever). The clock starts when the connection opens, and again when a
    response is complete on a kept-alive connection; it stops once the request's headers have
    arrived. A connection still without them after ``header_timeout`` seconds is closed."""

    header_timeout: float = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def handle_events(self) -> None:  # runs on new data and after a response is complete
        super().handle_events()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _watch_headers(self) -> None:
        if not self._waiting_for_headers():
            self._stop_header_timer()
        elif self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._waiting_for_headers():
            return
        log.debug("closing a connection from %s: no request headers within %g s",
                  self.client, self.header_timeout)
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutH11Protocol]:
    """``HeaderTimeoutH11Protocol`` with a ``header_timeout`` of ``seconds``, for uvicorn's
    ``http=``."""
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,),
                {"header_timeout": float(seconds)})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 50.0,
          max_seconds: float = 300.0, header_timeout: float = HEADER_TIMEOUT,
          max_connections: int = MAX_CONNECTIONS) -> None:
    """Run the app with uvicorn until interrupted. A connection must send its request headers
    within ``header_timeout`` seconds (else it is closed); at most ``max_connections`` open
    connections are served, a request on any further one is answered 503."""

    import uvicorn

    if not 0 < port < 65536:
        raise UserError("--port must be within 1..65535")
    _check_limits(max_upload_mb, max_seconds)
    if not 0 < header_timeout <= 3600:
        raise UserError("--header-timeout must be within (0, 3600] seconds")
    if not 1 <= max_connections <= 100_000:
        raise UserError("--max-connections must be within 1..100000")
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
    # uvicorn answers 503 once the open connections, this one included, reach
    # limit_concurrency: hence the + 1 for max_connections to be served
    uvicorn.run(app, host=host, port=port, log_level="warning",
                http=header_timeout_protocol(header_timeout),
                limit_concurrency=max_connections + 1)
