"""Progress bars for long loops (tqdm), silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_bar(desc: str) -> Callable[[Iterable[T]], Iterable[T]]:
    def wrap(items: Iterable[T]) -> Iterable[T]:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        return tqdm(items, desc=desc, total=total, unit="file", disable=not sys.stderr.isatty())
    return wrap
