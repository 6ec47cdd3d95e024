"""How `fusekit metrics` hands its numbers over: a metrics JSON document, CSV, tab-separated values for pipes, or
a rich table for a person at a terminal. Undefined values become null/empty with a warning, never a number."""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

from .. import log
from ..io.atomic import is_stdio, write_text
from ..io.formats import dump_json, new_metrics_document
from .compute import is_missing
from .registry import CONVENTIONS, METRICS

_WHY_MISSING = {
    "SCD": "a difference image F-A or F-B is constant",
    "PSNR": "F equals both sources (no error)",
    "CC": "an image is constant",
}


def row(item, names: list[str], values: dict[str, float]) -> dict:
    """One JSON row: the item's name and paths, then each metric (NaN/inf → None, with a warning)."""
    entry: dict = {"name": item.name, **{role: str(path) for role, path in item.paths.items()}}
    for name in names:
        value = values[name]
        if is_missing(value):
            why = _WHY_MISSING.get(name, "the definition gives no number for this triple")
            log.warn(f"{item.name}: {name} is undefined ({why}); reported as null")
            value = None
        entry[name] = value
    return entry


def column_means(rows: list[dict], names: list[str]) -> dict[str, float | None]:
    """Per metric, the mean over the rows where it is defined (VIFB's ``nanmean``); None where none is."""
    means = {}
    for name in names:
        values = [r[name] for r in rows if r.get(name) is not None]
        means[name] = math.fsum(values) / len(values) if values else None
    return means


def choose_format(as_json: bool, as_csv: bool, output: str | None) -> str:
    if as_json:
        return "json"
    if as_csv:
        return "csv"
    if output and not is_stdio(output):
        return {".json": "json", ".csv": "csv"}.get(Path(output).suffix.lower(), "tsv")
    return "table" if sys.stdout.isatty() else "tsv"


def write(path: str, fmt: str, convention: str, names: list[str], rows: list[dict], failed) -> None:
    """Write all rows at once, atomically (stdout for ``-``)."""
    if fmt == "table":
        _print_table(convention, names, rows)
        return
    if fmt == "json":
        document = new_metrics_document(convention, names, rows, column_means(rows, names))
        document["better"] = {name: METRICS.get(name).better for name in names}
        document["failed"] = [{"name": name, "reason": reason} for name, reason in failed]
        text = dump_json(document)
    else:
        text = _delimited(rows, names, "," if fmt == "csv" else "\t")
    write_text(path, text)


def _columns(rows: list[dict], names: list[str]) -> list[str]:
    roles = [role for role in ("fused", "a", "b") if any(role in r for r in rows)]
    return ["name", *roles, *names]


def _delimited(rows: list[dict], names: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    columns = _columns(rows, names)
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    return buffer.getvalue()


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def _print_table(convention: str, names: list[str], rows: list[dict]) -> None:
    """One table when it fits the terminal; else the metrics split over several tables of the same rows, each as
    wide as the terminal allows, so no number or header is ever cut (80 columns hold 5-6 metrics)."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console()
    means = column_means(rows, names) if len(rows) > 1 else None

    def fits(group: list[str]) -> bool:  # measured without a width limit: a measurement is clamped to the limit
        unlimited = console.options.update_width(1_000_000)
        return Measurement.get(console, unlimited, _table(group, rows, means)).maximum <= console.width

    groups: list[list[str]] = []
    for name in names:
        if groups and fits([*groups[-1], name]):
            groups[-1].append(name)
        else:
            groups.append([name])
    for index, group in enumerate(groups):
        title = f"fusion metrics, {convention} convention" + (f" ({index + 1}/{len(groups)})" if len(groups) > 1 else "")
        console.print(_table(group, rows, means, title))


def _table(names: list[str], rows: list[dict], means: dict | None, title: str | None = None):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("name", overflow="fold")
    for name in names:
        arrow = "↑" if METRICS.get(name).higher_is_better else "↓"
        table.add_column(f"{name} {arrow}", justify="right", no_wrap=True)
    for r in rows:
        table.add_row(r["name"], *(_fmt(r[name]) for name in names))
    if means is not None:
        table.add_row("mean", *(_fmt(means[name]) for name in names), style="bold")
    return table


def print_registry(as_json: bool) -> None:
    """`fusekit metrics --list`: every metric with its conventions, direction, inputs and aliases."""
    conventions = CONVENTIONS.names()
    if as_json:
        listing = {
            "conventions": {name: {"title": c.title, "source": c.source, "metrics": list(c.metrics)} for name, c in CONVENTIONS.items()},
            "metrics": {
                m.name: {
                    "title": m.title, "better": m.better, "needs": list(m.needs), "aliases": list(m.aliases),
                    "definitions": {c: {"summary": d.summary, "range": [_json_number(x) for x in d.range]} for c, d in m.definitions.items()},
                }
                for _, m in METRICS.items()
            },
        }
        sys.stdout.write(dump_json(listing))
        return
    lines = ["metric\tbetter\tneeds\tconventions\taliases\ttitle"]
    for _, m in METRICS.items():
        defined = ",".join(c for c in conventions if c in m.definitions)
        lines.append(f"{m.name}\t{m.better}\t{','.join(m.needs)}\t{defined}\t{','.join(m.aliases) or '-'}\t{m.title}")
    sys.stdout.write("\n".join(lines) + "\n")


def _json_number(x: float):
    return x if math.isfinite(x) else None
