"""What every command's "one item or many" shares: choosing the items, taking the shard, running and reporting.

`work_for` turns the positional paths / ``--manifest`` / ``--shard`` of a command into its `Work` (the shard's
items, the matching problems this shard reports, and whether this is a batch); `run_work` runs them through
`fusekit.io.batch.run_batch` (one calling convention: ``process(item, data)``) and reports the summary.
`pair_output` is where a batch writes one pair.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Work:
    """The items a command runs over after --shard, the problems this shard reports, and whether it is a batch
    (a --manifest or a folder: many items, written per item) rather than one item given on the command line."""

    items: list
    problems: list[tuple[str, str]]
    many: bool


def work_for(paths: list[str] | None, manifest: str | None, shard: str | None, items: list | None = None,
             **select_options) -> Work:
    """The `Work` of a command: pairs (or other roles, via `select_options`) selected from `paths` / `manifest`,
    or the command's own `items` (e.g. encode-text's documents), then the shard of them."""
    from ..io.pairs import parse_shard, select, shard_problems, take_shard

    paths = paths or []
    problems: list[tuple[str, str]] = []
    if items is None:
        selection = select(paths, manifest, **select_options)
        items, problems = selection.items, selection.problems
    shard_spec = parse_shard(shard)
    many = bool(manifest) or any(os.path.isdir(path) for path in paths)
    return Work(take_shard(items, shard_spec), shard_problems(problems, shard_spec), many)


def run_work(work: Work, process: Callable[[Any, Any], Any], *, summary: str | None = None,
             before_report: Callable[[Any], None] | None = None, **run_options) -> int:
    """Run the work (`run_options`: those of `run_batch`), then the command's own last step (`before_report`, given
    the `BatchResult`), then the summary line and file; the exit code."""
    from ..io.batch import run_batch

    result = run_batch(work.items, process, problems=work.problems, total=len(work.items), **run_options)
    if before_report is not None:
        before_report(result)
    result.report(summary)
    return result.exit_code


def pair_output(item, folder: str, suffix: str) -> str:
    """Where a batch writes one pair: the manifest's `out` field when it has one, else FOLDER/<pair name><suffix>.

    One rule for every command, so `fuse --text DIR` (and the other guidance options) find each pair's file by name.
    """
    return str(item.fields.get("out") or Path(folder) / f"{item.name}{suffix}")
