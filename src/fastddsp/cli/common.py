"""What several commands share: the parser class and the checks of shared options."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import UserError
from ..limits import MAX_INPUT_RATE, MIN_INPUT_RATE


class Parser(argparse.ArgumentParser):
    """One-line errors (exit 2, like every other bad input). Options whose making is costly
    can be deferred (``defer``) until this parser parses or prints help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[Parser], None]] = []

    def defer(self, add_options: Callable[[Parser], None]) -> None:
        self._deferred.append(add_options)

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        while self._deferred:
            self._deferred.pop(0)(self)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):  # one line, exit 2
        self.exit(2, f"fastddsp: error: {message}\n")


def check_rate(rate: int | None) -> None:
    if rate is not None and not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise UserError(f"--sr must be within {MIN_INPUT_RATE}..{MAX_INPUT_RATE} Hz")


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the features cache (`fastddsp cache`)")
