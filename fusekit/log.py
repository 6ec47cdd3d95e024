"""Messages and progress on stderr.

stdout carries data only, so everything meant for a person goes through here: warnings and info lines prefixed
with ``fusekit <command>:``, and progress bars that appear only when stderr is a terminal (or ``--progress``).
The CLI layer calls `configure` once per command; library code just calls `warn`/`info`/`debug`/`progress`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Settings:
    command: str = ""
    verbosity: int = 0  # -1 quiet, 0 normal, 1 verbose (-v), 2 debug (-vv)
    progress: bool | None = None  # None: only when stderr is a terminal
    debug: bool = False  # show tracebacks


settings = _Settings()


def configure(command: str, verbosity: int = 0, progress: bool | None = None, debug: bool = False) -> None:
    settings.command = command
    settings.verbosity = verbosity
    settings.progress = progress
    settings.debug = debug


def _prefix() -> str:
    return f"fusekit {settings.command}" if settings.command else "fusekit"


def _emit(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def error(message: str) -> None:
    """Always shown, even with -q."""
    _emit(f"{_prefix()}: error: {message}")


def warn(message: str) -> None:
    if settings.verbosity >= 0:
        _emit(f"{_prefix()}: warning: {message}")


def info(message: str) -> None:
    if settings.verbosity >= 0:
        _emit(f"{_prefix()}: {message}")


def verbose(message: str) -> None:
    if settings.verbosity >= 1:
        _emit(f"{_prefix()}: {message}")


def debug(message: str) -> None:
    if settings.verbosity >= 2:
        _emit(f"{_prefix()}: debug: {message}")


def progress_enabled() -> bool:
    if settings.verbosity < 0:
        return False
    if settings.progress is not None:
        return settings.progress
    return sys.stderr.isatty()


def progress(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Wrap `items` in a progress bar on stderr when progress is enabled; otherwise yield them unchanged."""
    if not progress_enabled():
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, total=total, desc=description or settings.command, file=sys.stderr, leave=False) as bar:
        yield from bar
