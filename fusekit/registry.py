"""One small registry class behind every list of named things (fusion models, describers, encoders, metrics).

`models`, the CLI help and the docs are generated from registries, so adding a method is one module plus one
registration. Unknown names fail with a "did you mean" suggestion.

Entries are lazy where importing them is costly: `add_lazy(name, "package.module:attribute", summary=...)` records
the name and what listing needs (``info``) without importing the module, which happens on the first `get`. So
`fusekit models`, `describe --list` or `fuse --model gff` do not import torch or every network. A registry with
an entry-point ``group`` (e.g. ``fusekit.models``) also lists what installed packages declare there, the same lazy
way: a third-party package adds a model or backend without editing fusekit (docs/PLUGINS.md).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import FusekitError, UsageError

T = TypeVar("T")


def import_object(target: str) -> Any:
    """The object `target` names: ``"package.module:attribute"`` (the attribute may be dotted)."""
    module_name, _, attribute = target.partition(":")
    value = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        value = getattr(value, part)
    return value


class LazyObject:
    """A stand-in for ``"package.module:attribute"`` that imports it on first use.

    Calling it calls the object and reading an attribute reads the object's, so a spec field holding a network
    class or a config dataclass works as the class itself (``spec.build(config)``, ``dataclasses.fields(spec.config)``)
    while declaring the spec imports nothing.
    """

    __slots__ = ("target", "_value")

    def __init__(self, target: str):
        self.target = target
        self._value = None

    def resolve(self) -> Any:
        if self._value is None:
            self._value = import_object(self.target)
        return self._value

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__") and name not in ("__dataclass_fields__", "__name__"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __eq__(self, other) -> bool:
        return isinstance(other, LazyObject) and other.target == self.target

    def __hash__(self) -> int:
        return hash(self.target)

    def __repr__(self) -> str:
        return f"<lazy {self.target}>"


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports `package`'s public name from its submodule on first use
    (`where`: name → submodule, e.g. ``{"describe_pair": "pipeline"}``), so importing the package for its
    registry stays cheap (no numpy or torch) while ``from package import describe_pair`` keeps working."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__


def resolved(value: Any) -> Any:
    """`value` itself, or the object a `LazyObject` stands for (imported now)."""
    return value.resolve() if isinstance(value, LazyObject) else value


@dataclass
class _Entry:
    target: str | None  # "module:attribute" not imported yet; None once `value` is set
    value: Any = None
    info: dict = field(default_factory=dict)
    plugin: str = ""  # the distribution that declared it, for entry-point entries


class Registry(Generic[T]):
    """Named entries of one kind. `kind` is the word used in messages ("fusion model", "metric", ...);
    `list_hint` ends the "unknown name" error (``{known}`` becomes the registered names; default "known: ...");
    `group` is the entry-point group third-party packages register into (None: built-ins only)."""

    def __init__(self, kind: str, list_hint: str = "", group: str | None = None):
        self.kind = kind
        self.list_hint = list_hint
        self.group = group
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._plugins_loaded = group is None

    # ------------------------------------------------------------------------------------------ registering

    def add(self, name: str, entry: T, aliases: tuple[str, ...] = (), **info) -> T:
        """Register an object that is already imported."""
        self._insert(name, _Entry(None, entry, info), aliases)
        return entry

    def add_lazy(self, name: str, target: str, aliases: tuple[str, ...] = (), **info) -> None:
        """Register ``"package.module:attribute"`` without importing it; `info` is what listing shows."""
        self._insert(name, _Entry(target, None, info), aliases)

    def register(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(entry: T) -> T:
            return self.add(name, entry, aliases)

        return decorate

    def _insert(self, name: str, entry: _Entry, aliases: tuple[str, ...]) -> None:
        key = name.lower()
        if key in self._entries or key in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[alias.lower()] = key

    def _load_plugins(self) -> None:
        """Add the entry points of `group` (once, lazily: nothing of a plugin is imported until it is used).
        A plugin cannot replace a built-in name; it is skipped with a warning."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        from . import log

        for point in sorted(entry_points(group=self.group), key=lambda p: p.name):
            distribution = getattr(point.dist, "name", "") or "a package"
            if point.name.lower() in self:
                log.warn(f"{distribution} registers {self.kind} {point.name!r}, which fusekit already has; ignored")
                continue
            self._insert(point.name, _Entry(point.value, None, {}, distribution), ())

    # ------------------------------------------------------------------------------------------ looking up

    def _key(self, name: str) -> str | None:
        key = name.strip().lower()
        if key in self._entries:
            return key
        return self._aliases.get(key)

    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases (case-insensitive). An unknown name is a usage
        error (exit 2) with a "did you mean" and the registered names."""
        key = self._key(name)
        if key is None and not self._plugins_loaded:
            self._load_plugins()
            key = self._key(name)
        if key is not None:
            return key
        choices = list(self._entries) + list(self._aliases)
        close = difflib.get_close_matches(name.strip().lower(), choices, n=1, cutoff=0.5)
        suggestion = f"did you mean {self._aliases.get(close[0], close[0])!r}? " if close else ""
        listing = (self.list_hint or "known: {known}").replace("{known}", ", ".join(self.names()))
        raise UsageError(f"unknown {self.kind} {name!r}", f"{suggestion}{listing}")

    def get(self, name: str) -> T:
        """The entry, importing its module the first time."""
        key = self.canonical(name)
        entry = self._entries[key]
        if entry.target is not None:
            entry.value = self._import(key, entry)
            entry.target = None
        return entry.value

    def _import(self, key: str, entry: _Entry) -> Any:
        if not entry.plugin:
            return import_object(entry.target)  # a built-in that does not import is a bug: let it show
        try:
            return import_object(entry.target)
        except Exception as exc:
            raise FusekitError(
                f"{self.kind} {key!r} from {entry.plugin} ({entry.target}) failed to load: {type(exc).__name__}: {exc}",
                f"fix or uninstall {entry.plugin}",
            ) from exc

    def info(self, name: str) -> dict:
        """What the registration declared about `name` (summary, ...), without importing it."""
        return dict(self._entries[self.canonical(name)].info)

    def listing(self) -> list[dict]:
        """One row per entry for ``--list``: name, aliases, summary, default model, providing package ("" for
        fusekit). Built-ins are listed from their registration; a plugin's entry is imported to read its
        docstring's first line and its `default_model`."""
        rows = []
        for name in self.names():
            info, plugin = self.info(name), self.plugin_of(name)
            if plugin:
                value = self.get(name)
                doc = (getattr(value, "__doc__", None) or "").strip()
                info = {"summary": doc.splitlines()[0] if doc else "", "model": str(getattr(value, "default_model", "") or "")}
            rows.append({"name": name, "aliases": self.aliases_of(name), "summary": info.get("summary", ""),
                         "model": info.get("model", ""), "plugin": plugin})
        return rows

    def plugin_of(self, name: str) -> str:
        """The distribution that added `name` through an entry point ("" for fusekit's own)."""
        return self._entries[self.canonical(name)].plugin

    def __contains__(self, name: str) -> bool:
        if self._key(name) is None and not self._plugins_loaded:
            self._load_plugins()
        return self._key(name) is not None

    def names(self, plugins: bool = True) -> list[str]:
        """Every registered name, built-ins first in registration order, then plugins; imports nothing.
        ``plugins=False``: fusekit's own only, without looking at installed packages (for help texts built at
        start-up, which should not pay for scanning every package's metadata)."""
        if plugins:
            self._load_plugins()
        return [name for name, entry in self._entries.items() if plugins or not entry.plugin]

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, entry) for every entry, importing each (use `names` and `info` to list without importing)."""
        return iter([(name, self.get(name)) for name in self.names()])

    def aliases_of(self, name: str) -> list[str]:
        key = self.canonical(name)
        return [alias for alias, target in self._aliases.items() if target == key]
