"""One small registry class behind every list of named things (fusion models, describers, encoders, metrics).

`models`, the CLI help and the docs are generated from registries, so adding a method is one module plus one
registration. Unknown names fail with a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind. `kind` is the word used in messages ("fusion model", "metric", ...)."""

    def __init__(self, kind: str, list_hint: str = ""):
        self.kind = kind
        self.list_hint = list_hint
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, entry: T, aliases: tuple[str, ...] = ()) -> T:
        key = name.lower()
        if key in self._entries or key in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[alias.lower()] = key
        return entry

    def register(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(entry: T) -> T:
            return self.add(name, entry, aliases)

        return decorate

    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases (case-insensitive); raises with a suggestion."""
        key = name.strip().lower()
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        choices = list(self._entries) + list(self._aliases)
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
        # Suggest the registered name an alias stands for: the listing shows registered names only.
        suggestion = f"did you mean {self._aliases.get(close[0], close[0])!r}? " if close else ""
        listing = self.list_hint or f"known: {', '.join(sorted(self._entries))}"
        raise UsageError(f"unknown {self.kind} {name!r}", f"{suggestion}{listing}")

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def __contains__(self, name: str) -> bool:
        key = name.strip().lower()
        return key in self._entries or key in self._aliases

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def aliases_of(self, name: str) -> list[str]:
        key = self.canonical(name)
        return [alias for alias, target in self._aliases.items() if target == key]
