"""`fastddsp app`: the local web app."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("app", help="local web app: upload or record audio, hear it "
                              "played by an instrument")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--max-upload-mb", type=float, default=50.0,
                   help="largest upload accepted, in MB (default 50)")
    s.add_argument("--max-seconds", type=float, default=300.0,
                   help="longest recording accepted, in seconds (default 300)")
    s.add_argument("--header-timeout", type=float, default=10.0,
                   help="close a connection whose request headers take longer than this, in "
                        "seconds (default 10)")
    s.add_argument("--max-connections", type=int, default=64,
                   help="open connections served at once; a request beyond gets 503 "
                        "(default 64)")
    s.set_defaults(func=run)


def _require_app_extra() -> None:
    """The server imports FastAPI and uvicorn; these two of the [app] extra it needs only on
    a request (a plot, an upload), so that a missing one is found here, at start, and reported
    by its install command (``cli.main``) rather than on every upload."""
    import matplotlib  # noqa: F401

    try:
        import python_multipart  # noqa: F401  (python-multipart 0.0.13 and later)
    except ModuleNotFoundError:
        import multipart  # noqa: F401  (earlier python-multipart)


def run(args: argparse.Namespace) -> int:
    from ..pages.app.server import serve

    _require_app_extra()
    serve(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
          max_seconds=args.max_seconds, header_timeout=args.header_timeout,
          max_connections=args.max_connections)
    return 0
