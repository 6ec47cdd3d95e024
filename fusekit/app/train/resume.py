"""What `train --resume` may change, and how a resume is recorded.

A resumed run takes its settings from ``<out>/run.json``; an option given again with another value (``--lr 0.1``)
would silently be ignored, so it is refused unless it is one of the documented changeable ones (`RESUMABLE_CHANGES`
in `loop`: epochs, step limits, checkpointing, logging, device, precision, workers). Every resume is appended to
the checkpoints' ``history`` metadata (step, time, command, changed options), so a checkpoint says how it was made.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from ...errors import UsageError

# Settings that identify the run (checked by name in `loop.load_run_settings`) or describe this invocation.
_NOT_COMPARED = ("model", "task", "data", "out", "resume", "command")


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else None


def _given(given, stored, changeable: tuple[str, ...]):
    """(option, given, stored) of each option given with a value other than its default and the stored one."""
    for field in dataclasses.fields(given):
        if field.name in _NOT_COMPARED or field.name in changeable:
            continue
        value, default, before = getattr(given, field.name), _default(field), getattr(stored, field.name)
        if dataclasses.is_dataclass(value):
            yield from _given(value, before, ())
        elif value != default and _plain(value) != _plain(before):
            yield field.name, value, before


def _plain(value):
    """Tuples and lists compare equal after the JSON round trip of run.json."""
    return list(value) if isinstance(value, tuple) else value


def refuse_changes(stored, given, changeable: tuple[str, ...]) -> None:
    """Raise a usage error for the first setting `given` changes that a resume cannot change."""
    for name, value, before in _given(given, stored, changeable):
        option = "--" + name.replace("_", "-")
        raise UsageError(f"{option} {value} differs from the run being resumed ({before})",
                         f"drop {option} (only {', '.join(changeable)} may change on --resume) or start a new --out")


def history(metadata: dict, step: int, settings, out: str | Path, changeable: tuple[str, ...]) -> str:
    """The ``history`` metadata for checkpoints of a resumed run: the resumed checkpoint's, plus this resume."""
    record = json.loads((Path(out) / "run.json").read_text(encoding="utf-8"))["settings"]
    changed = {name: getattr(settings, name) for name in changeable if getattr(settings, name) != record.get(name)}
    entries = json.loads(metadata.get("history") or "[]")
    entries.append({"from_step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "command": settings.command, "changed": changed})
    return json.dumps(entries, sort_keys=True)
