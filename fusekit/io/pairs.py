"""Which images a command works on: one pair, two folders matched by name, or a manifest; plus sharding.

Every command that takes images goes through here, so matching, sharding and reporting of unmatched names are the
same everywhere. An `Item` is one unit of work: a name and a path per role (``a``/``b`` for a pair, and for
metrics also ``fused``), plus any extra fields a manifest line carries (``text``, ``out``, ...).

Manifest format (docs/FORMATS.md): JSON Lines, one object per item with at least ``a`` and ``b`` (and ``fused``
for metrics); optional ``name`` (default: the stem of ``a``), ``text``, ``image_features``, ``out``. Relative
paths are relative to the manifest's folder. A JSON file holding a list of such objects is accepted too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import log
from ..errors import FusekitError, UsageError
from .atomic import read_bytes
from .images import is_image_path


@dataclass
class Item:
    name: str
    paths: dict[str, str]
    fields: dict = field(default_factory=dict)
    # Named one by one on the command line (not from a folder or manifest): never sharded away, so a one-pair
    # command inside a SLURM array job still does its work.
    single: bool = False

    @property
    def a(self) -> str:
        return self.paths["a"]

    @property
    def b(self) -> str:
        return self.paths["b"]


@dataclass
class Selection:
    """The items to process and the problems found while matching them (each reported as a failed item)."""

    items: list[Item]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def _images_by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and is_image_path(path) and not path.name.startswith("."):
            found.setdefault(path.stem, path)
    return found


def match_folders(folders: dict[str, str | os.PathLike]) -> Selection:
    """Items from sibling folders, matched by file stem; a stem missing from any folder is a problem."""
    listings = {}
    for role, folder in folders.items():
        path = Path(folder)
        if not path.is_dir():
            raise FusekitError(f"folder not found: {folder}", "check the path")
        listings[role] = _images_by_stem(path)
    stems = sorted(set().union(*[set(listing) for listing in listings.values()]))
    items, problems = [], []
    for stem in stems:
        missing = [role for role, listing in listings.items() if stem not in listing]
        if missing:
            where = ", ".join(f"{folders[role]}" for role in missing)
            problems.append((stem, f"no image named {stem!r} in {where}"))
            continue
        items.append(Item(stem, {role: str(listing[stem]) for role, listing in listings.items()}))
    if not items and not problems:
        raise FusekitError(f"no images found in {', '.join(str(f) for f in folders.values())}", "use PNG, JPEG, TIFF or BMP files")
    return Selection(items, problems)


# Manifest fields holding a path (resolved against the manifest's folder), besides the roles.
PATH_FIELDS = ("text", "image_features", "semantics", "mask", "out")


def read_manifest(path: str | os.PathLike, roles: tuple[str, ...] = ("a", "b")) -> Selection:
    """Items from a JSON Lines (or JSON list) manifest; each line needs a path for every role in `roles`."""
    text = read_bytes(path, "manifest").decode("utf-8", errors="replace")
    base = Path(path).parent if str(path) != "-" else Path(".")
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            entries = json.loads(text)
        else:
            entries = [json.loads(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    except json.JSONDecodeError as exc:
        raise FusekitError(f"manifest {path}: line {exc.lineno}: not JSON ({exc.msg})", "one JSON object per line, e.g. {\"a\": ..., \"b\": ...}") from exc
    if not isinstance(entries, list):
        raise FusekitError(f"manifest {path} is not a list of objects", "one JSON object per line, or a JSON list of them")
    items, problems, seen = [], [], set()
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise FusekitError(f"manifest {path}: entry {number} is not an object", "one JSON object per line")
        wrong = [key for key in ("name", *roles, *PATH_FIELDS) if entry.get(key) is not None and not isinstance(entry[key], str)]
        if wrong:
            raise FusekitError(f"manifest {path}: entry {number}: {wrong[0]!r} is not a string", "paths and names are JSON strings")
        missing = [role for role in roles if not entry.get(role)]
        name = str(entry.get("name") or (Path(entry[roles[0]]).stem if entry.get(roles[0]) else f"line{number}"))
        if missing:
            problems.append((name, f"manifest entry {number} lacks {', '.join(missing)}"))
            continue
        if name in seen:
            raise UsageError(f"manifest {path}: name {name!r} appears twice", "give each entry a unique 'name'")
        seen.add(name)
        paths = {role: _resolve(base, entry[role]) for role in roles}
        fields = {key: _resolve(base, value) if key in PATH_FIELDS else value for key, value in entry.items() if key not in roles and key != "name"}
        items.append(Item(name, paths, fields))
    if not items and not problems:
        raise FusekitError(f"manifest {path} is empty", "add one JSON object per item")
    return Selection(items, problems)


def _resolve(base: Path, value) -> str:
    if not isinstance(value, str) or value == "-" or os.path.isabs(value):
        return value
    return str(base / value)


def select(positional: list[str], manifest: str | None = None, roles: tuple[str, ...] = ("a", "b"),
           folders: dict[str, str | None] | None = None) -> Selection:
    """The items a command was asked to work on.

    `positional` holds one path per role (files: one item; folders: matched by stem); `manifest` a manifest file;
    `folders` role → folder options (e.g. metrics' ``--fused/--a/--b``). Exactly one of the three forms.
    """
    folders = {role: value for role, value in (folders or {}).items() if value}
    forms = sum([bool(positional), bool(manifest), bool(folders)])
    if forms == 0:
        raise UsageError(f"no input given", f"give {' '.join(role.upper() for role in roles)} paths, folders or --manifest")
    if forms > 1:
        raise UsageError("give inputs one way only", "paths, folders or --manifest, not several")
    if manifest:
        return read_manifest(manifest, roles)
    if folders:
        missing = [role for role in roles if role not in folders]
        if missing:
            raise UsageError(f"missing folder for {', '.join(missing)}", f"give --{' --'.join(roles)} together")
        return match_folders(folders)
    if len(positional) != len(roles):
        raise UsageError(f"expected {len(roles)} paths ({', '.join(role.upper() for role in roles)}), got {len(positional)}", "see --help")
    if all(os.path.isdir(path) for path in positional):
        return match_folders(dict(zip(roles, positional)))
    if any(os.path.isdir(path) for path in positional):
        raise UsageError("mix of files and folders", "give all files (one item) or all folders (matched by name)")
    name = Path(positional[0]).stem if positional[0] != "-" else "stdin"
    return Selection([Item(name, dict(zip(roles, positional)), single=True)])


# ----------------------------------------------------------------------------------------------- sharding


def parse_shard(spec: str | None, environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``K/N`` (K counted from 0) → (K, N). Without a spec, a SLURM array job's own index and count are used."""
    environ = os.environ if environ is None else environ
    if not spec:
        task_id, count = environ.get("SLURM_ARRAY_TASK_ID"), environ.get("SLURM_ARRAY_TASK_COUNT")
        if task_id is None or count is None:
            return None
        try:
            index = int(task_id) - int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
            total = int(count)
        except ValueError as exc:
            raise UsageError("SLURM_ARRAY_TASK_ID/COUNT are not integers", "check the job's environment") from exc
        spec_from = f"SLURM_ARRAY_TASK_ID={task_id}, SLURM_ARRAY_TASK_COUNT={count}"
    else:
        try:
            index_text, _, total_text = spec.partition("/")
            index, total = int(index_text), int(total_text)
        except ValueError as exc:
            raise UsageError(f"bad --shard {spec!r}", "write K/N with 0 <= K < N, e.g. 0/4") from exc
        spec_from = f"--shard {spec}"
    if total < 1 or not 0 <= index < total:
        raise UsageError(f"bad shard ({spec_from})", "need 0 <= K < N")
    return index, total


def take_shard(items: list[Item], shard: tuple[int, int] | None) -> list[Item]:
    """Items ``K, K+N, K+2N, …`` of the name-sorted list: shards are disjoint and together cover everything.

    Sharding is for many-item inputs (folders, manifests): an item named on the command line (`Item.single`) is
    always kept, whatever the shard. A shard left with no items says so on stderr rather than finishing silently.
    """
    if shard is None or all(item.single for item in items):
        return items
    index, total = shard
    ordered = sorted(items, key=lambda item: item.name)
    taken = ordered[index::total]
    if not taken:
        count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
        log.warn(f"shard {index}/{total} has no items ({count} for {total} shards); nothing to do")
    return taken


def shard_problems(problems: list[tuple[str, str]], shard: tuple[int, int] | None) -> list[tuple[str, str]]:
    """Matching problems of a sharded run belong to shard 0 alone, so N array tasks report each one once."""
    return list(problems) if shard is None or shard[0] == 0 else []
