"""Progress bars (tqdm, on stderr) for anything that takes more than a moment: files of a
folder, or seconds of audio. Silent when stderr is not a terminal or the user asked for quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

import numpy as np
from tqdm import tqdm

T = TypeVar("T")


def shown(quiet: bool = False) -> bool:
    return not quiet and sys.stderr.isatty()


def progress_bar(desc: str, quiet: bool = False) -> Callable[[Iterable[T]], Iterable[T]]:
    """Wraps an iterable of files in a bar."""
    def wrap(items: Iterable[T]) -> Iterable[T]:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        return tqdm(items, desc=desc, total=total, unit="file", disable=not shown(quiet))
    return wrap


Advance = Callable[[float], None]
# (description, total seconds) -> a context that yields the function advancing the bar
ProgressFactory = Callable[[str, float], AbstractContextManager[Advance]]


def no_progress(desc: str, total_seconds: float) -> AbstractContextManager[Advance]:
    return nullcontext(lambda seconds: None)


@contextmanager
def seconds_bar(desc: str, total_seconds: float, quiet: bool = False
                ) -> Iterator[Advance]:
    """A bar over ``total_seconds`` of audio with its rate and time left; yields the function
    that advances it by a number of seconds."""
    bar = tqdm(total=round(total_seconds, 2), desc=desc, unit="s", disable=not shown(quiet),
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio "
                          "[{elapsed}<{remaining}]", file=sys.stderr)
    try:
        yield lambda seconds: bar.update(round(seconds, 2))
    finally:
        bar.close()


def counted(chunks: Iterable[np.ndarray], sample_rate: float, advance: Advance
            ) -> Iterator[np.ndarray]:
    """The chunks, advancing a ``seconds_bar`` by their duration as each passes."""
    for chunk in chunks:
        yield chunk
        advance(len(chunk) / sample_rate)
