"""The `fastddsp` command: the top-level parser, one sub-command per module of this package,
and the one place that turns an exception into a line on stderr and an exit code.

Exit codes: 0 success, 2 bad input or a missing optional extra (one line on stderr),
1 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import version

from ..errors import UserError
from .common import Parser

# the command modules, in the order `fastddsp --help` lists them; imported when the parser is
# built, inside `run`, so that even an interrupt while PyTorch loads is one line, exit 130
COMMANDS = ("synth", "features", "prepare", "train", "eval", "transfer", "render", "export",
            "quantize", "bench", "live", "models", "info", "report", "app", "demo", "cache")

# the top-level module of each optional dependency -> the extra of pyproject.toml holding it
EXTRAS = {"lightning": "train", "fastapi": "app", "starlette": "app", "uvicorn": "app",
          "multipart": "app", "python_multipart": "app", "matplotlib": "app",
          "sounddevice": "live"}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="fastddsp", description="Fast DDSP instrument synthesis.")
    p.add_argument("--version", action="version", version=f"fastddsp {version('fastddsp')}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        import_module(f".{command}", __package__).register(sub)
    return p


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)  # `train`'s options import the [train] extra
        if getattr(args, "no_cache", False):
            from ..cache import cache_disabled

            with cache_disabled():
                return args.func(args)
        return args.func(args)
    except UserError as e:
        print(f"fastddsp: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
    except KeyboardInterrupt:
        print("fastddsp: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("fastddsp: error: out of memory", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        extra = EXTRAS.get((e.name or "").partition(".")[0])
        if extra is None:
            return _internal_error(e)
        command = next((a for a in argv if not a.startswith("-")), "")
        print(f"fastddsp {command} needs the [{extra}] extra: pip install 'fastddsp[{extra}]'",
              file=sys.stderr)
        return 2
    except Exception as e:
        return _internal_error(e)


def _internal_error(e: Exception) -> int:
    """An internal failure: still one line, still no partial output."""
    print(f"fastddsp: internal error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
    return 1


def main() -> None:
    code = run()
    if code == 130:
        # Interrupted: leave at once. Finalizing the interpreter after an interrupt that hit
        # the middle of a C extension's import (PyTorch's takes ~1.5 s) could die of the
        # signal after all (exit -2, seen about once in 40 interrupts there).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)
