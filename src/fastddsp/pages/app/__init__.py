"""`fastddsp app`: a local web page for timbre transfer (FastAPI + a static page)."""

from .server import create_app, serve

__all__ = ["create_app", "serve"]
