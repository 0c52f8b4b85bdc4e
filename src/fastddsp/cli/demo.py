"""`fastddsp demo`: the built-in melody through the bundled models."""

from __future__ import annotations

import argparse

from .common import add_cache_option


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("demo", help="render the built-in melody through the bundled models")
    s.add_argument("-o", "--output", default="fastddsp-demo",
                   help="output folder (default fastddsp-demo)")
    add_cache_option(s)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pages.demo import run_demo

    result = run_demo(args.output)
    print(f"rendered the melody and the sung phrase through {len(result.rows)} models "
          f"({', '.join(result.rows)})")
    if not result.trained:
        print("note: no pretrained model is bundled; these are untrained presets")
    print(f"open {result.folder / 'index.html'}")
    return 0
