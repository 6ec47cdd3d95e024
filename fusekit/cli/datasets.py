"""`fusekit datasets`: the benchmark test sets by name; find a downloaded one's pairs, check them, write a manifest
(docs/REPORT.md). Argument handling only; the definitions and the checks live in `fusekit.app.datasets`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import command

HELP = """The public test sets the seed papers use, by name: MSRS, M3FD, RoadScene, TNO, LLVIP (ivf); Harvard, Harvard-CT, Harvard-PET, Harvard-SPECT (mif); MEFB, SICE (mef); Lytro, MFFW, RealMFF (mff).

Without NAME: list them (--json for the definitions). With NAME only: its pair roles, file layouts and the split sizes the papers report. With NAME --root DIR: find the pairs in the folder you downloaded (nothing is downloaded), check that every pair is complete and A and B have the same size, compare the count with the papers' split, and write a manifest (JSON Lines, docs/FORMATS.md) to -o or stdout, for --manifest of any command.

A folder that does not hold the dataset's layout is an error naming the layout expected. Incomplete or unregistered pairs are listed and nothing is written (exit 1) unless --allow-missing, which writes the complete pairs.

Example: fusekit datasets MSRS --root ~/data/MSRS -o msrs_test.jsonl
"""


@command("datasets", help=HELP)
def run(
    name: Annotated[Optional[str], typer.Argument(help="Dataset name (case does not matter).", show_default=False)] = None,
    root: Annotated[Optional[str], typer.Option("--root", "-r", help="Folder the dataset was downloaded to.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="test (default where the dataset has one), train or all.", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Manifest to write (- = stdout, the default).")] = None,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Write the complete pairs even when some are incomplete or unregistered.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the definitions as JSON.")] = False,
) -> int:
    import json
    import os

    from .. import log
    from ..app import datasets
    from ..errors import FusekitError, UsageError
    from ..io.atomic import is_stdio, write_text

    if name is None:
        if root:
            raise UsageError("--root needs a dataset name", "e.g. fusekit datasets MSRS --root DIR")
        rows = [d.describe() for d in datasets.DATASETS.values()]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False) if as_json else _listing(rows))
        return 0
    dataset = datasets.get_dataset(name)
    if root is None:
        typer.echo(json.dumps(dataset.describe(), indent=2, ensure_ascii=False) if as_json else _details(dataset.describe()))
        return 0
    found = datasets.find_pairs(dataset, root, split)
    for pair, reason in found.problems:
        log.error(f"{pair}: {reason}")
    for warning, note in found.notes:
        (log.warn if warning else log.info)(f"{dataset.name} {found.split}: {note}")
    if found.problems and not allow_missing:
        raise FusekitError(
            f"{len(found.problems)} of {len(found.items) + len(found.problems)} pairs under {root} are incomplete or unregistered; nothing written",
            "complete the download, or give --allow-missing to write the complete pairs only",
        )
    if not found.items:
        raise FusekitError(f"no complete pair of {dataset.name} under {root}", "check the download")
    destination = output or "-"
    relative_to = None if is_stdio(destination) else (os.path.dirname(destination) or ".")
    write_text(destination, datasets.manifest_lines(found, relative_to))
    log.info(f"{dataset.name} {found.split}: {len(found.items)} pairs ({found.layouts[0].source})" + ("" if is_stdio(destination) else f" → {destination}"))
    return 0


def _listing(rows: list[dict]) -> str:
    lines = ["name\ttask\tA\tB\tsplits\tpapers' split sizes"]
    for row in rows:
        sizes = "; ".join(f"{p['split']} {p['count']} ({p['source']})" for p in row["published"]) or "-"
        lines.append(f"{row['name']}\t{row['task']}\t{row['a']}\t{row['b']}\t{','.join(row['layouts'])}\t{sizes}")
    return "\n".join(lines)


def _details(row: dict) -> str:
    lines = [f"{row['name']} ({row['task']}): {row['summary']}", f"  {row['url']}", f"  A = {row['a']}, B = {row['b']}"]
    for split, layouts in row["layouts"].items():
        for layout in layouts:
            lines.append(f"  {split}: {layout['a']}.png + {layout['b']}.png  ({layout['source']})")
    for p in row["published"]:
        lines.append(f"  {p['split']} split: {p['count']} pairs, {p['source']}" + ("" if p["exact"] else " [selection not published]"))
    return "\n".join(lines)
