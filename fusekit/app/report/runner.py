"""The report run: fuse or read every method's result for every pair, measure them (cached), then write the tables,
the figures and the HTML page. Each (method, pair) is one batch item, so one bad pair fails alone."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from ... import __version__, log
from ...io.atomic import write_bytes, write_text
from ...io.batch import BatchResult, run_batch
from ...io.formats import write_json
from ...io.pairs import Item, shard_problems, take_shard
from . import figures, page, papers, scores, tables

# What a table shows when no paper reports this test set in this convention: FILM's columns, or VIFB's usual ones.
DEFAULT_METRICS = {"evaluator": ["EN", "SD", "SF", "AG", "VIF", "Qabf"], "vifb": ["EN", "SD", "SF", "AG", "Qabf", "SSIM", "Qcv"]}


@dataclass
class Settings:
    out: Path
    task: str
    methods: list
    items: list[Item]
    problems: list[tuple[str, str]] = field(default_factory=list)
    convention: str = "evaluator"
    metrics: list[str] | None = None
    dataset: str | None = None  # the test set's name in the papers' tables
    papers: list[str] | None = None  # None: every paper that reports `dataset`
    shard: tuple[int, int] | None = None
    device: str = "auto"
    precision: str = "fp32"
    zoom: tuple[int, int, int, int] | None = None
    figure_pairs: list[str] | None = None
    figures: int = 2
    panel_height: int = 240
    columns: int = 6
    inputs: str = ""  # how the pairs were given, for the settings list
    command: str = ""


@dataclass
class Outcome:
    result: BatchResult
    written: list[Path] = field(default_factory=list)
    table: tables.Table | None = None


def choose_metrics(settings: Settings, paper_rows: list) -> tuple[list[str], list[str]]:
    """(metric names, notes): --metrics, else the columns the papers report for this test set that the convention
    defines, else `DEFAULT_METRICS`."""
    from ...metrics.registry import METRICS, resolve

    if settings.metrics:
        return resolve(settings.metrics, settings.convention), []
    reported = papers.metrics_for(paper_rows)
    names = [name for name in reported if settings.convention in METRICS.get(name).definitions]
    notes = []
    dropped = [name for name in reported if name not in names]
    if dropped:
        notes.append(f"the papers also report {', '.join(dropped)}, which the {settings.convention} convention does not define")
    return names or list(DEFAULT_METRICS[settings.convention]), notes


def run(settings: Settings) -> Outcome:
    out = Path(settings.out)
    paper_rows, notes = ([], [])
    if settings.dataset and settings.papers != []:
        paper_rows, notes = papers.rows_for(settings.dataset, settings.convention, settings.papers)
        if not paper_rows and not notes:
            notes.append(f"no paper in fusekit's records reports {settings.dataset}")
    names, metric_notes = choose_metrics(settings, paper_rows)
    notes += metric_notes
    items = take_shard(settings.items, settings.shard)
    for method in settings.methods:
        method.prepare(settings.task, settings.device, settings.precision, items)
    work = [Item(f"{method.name}/{item.name}", item.paths, {"method": method, "pair": item}) for item in items for method in settings.methods]

    def process(entry: Item, _data) -> None:
        method, pair = entry.fields["method"], entry.fields["pair"]
        fused, seconds = method.produce(out, pair)
        scores.measure(out, method.name, pair, settings.convention, names, fused, seconds)

    problems = shard_problems(settings.problems, settings.shard)
    result = run_batch(work, process, problems=problems, total=len(work))
    outcome = Outcome(result)
    if settings.shard is not None:
        log.info(f"shard {settings.shard[0]}/{settings.shard[1]} measured; run once more without --shard to write the tables and figures")
        return outcome
    measured = [_measured_row(out, method, settings, names) for method in settings.methods]
    title = f"{settings.dataset or 'Fusion results'}: {len(settings.items)} pairs, {settings.task.upper()}, {settings.convention} convention"
    table = tables.build(title, names, measured, paper_rows, notes)
    outcome.table = table
    label = "tab:fusekit-" + re.sub(r"[^a-z0-9]+", "-", (settings.dataset or "report").lower()).strip("-")
    for name, text in (("report.md", tables.markdown(table)), ("report.tex", tables.latex(table, label)), ("report.csv", tables.csv_text(table))):
        write_text(out / name, text)
        outcome.written.append(out / name)
    shown = _figures(out, settings, outcome)
    write_text(out / "report.html", page.document(f"fusekit report — {title}", _settings_list(settings, names), [table], shown))
    outcome.written.append(out / "report.html")
    return outcome


def _measured_row(out: Path, method, settings: Settings, names: list[str]) -> tables.Row:
    from ...metrics.output import column_means

    fused = {item.name: method.fused_path(out, item) for item in settings.items}
    entries = scores.load_all(out, method.name, settings.items, settings.convention, names, fused)
    means = column_means([entry["values"] for entry in entries], names)
    seconds = [entry["seconds"] for entry in entries if entry.get("seconds") is not None]
    return tables.Row(method.name, f"fusekit ({len(entries)} pairs)", means, "fusekit", pairs=len(entries),
                      seconds=sum(seconds) / len(seconds) if seconds else None, parameters=method.parameters)


def _figure_items(out: Path, settings: Settings) -> list[Item]:
    complete = [item for item in settings.items if all(method.fused_path(out, item).is_file() for method in settings.methods)]
    if settings.figure_pairs:
        by_name = {item.name: item for item in complete}
        missing = [name for name in settings.figure_pairs if name not in by_name]
        for name in missing:
            log.warn(f"no figure for pair {name!r}: it is not among the pairs every method fused")
        return [by_name[name] for name in settings.figure_pairs if name in by_name]
    return sorted(complete, key=lambda item: item.name)[: settings.figures]


def _figures(out: Path, settings: Settings, outcome: Outcome) -> list[tuple[str, bytes]]:
    from ...io.images import read_image

    shown = []
    for item in _figure_items(out, settings):
        a, b = read_image(item.a), read_image(item.b)
        results = [(method.name, read_image(method.fused_path(out, item))) for method in settings.methods]
        sizes = {image.shape[:2] for _, image in results} | {a.shape[:2], b.shape[:2]}
        if len(sizes) > 1:
            log.warn(f"no figure for pair {item.name!r}: its images differ in size")
            continue
        zoom = figures.choose_zoom([image for _, image in results], a, b, settings.zoom)
        label_a, label_b = figures.SOURCE_LABELS[settings.task]
        figure, layout = figures.render([(label_a, a), (label_b, b), *results], zoom, settings.panel_height, settings.columns)
        layout["pair"] = item.name
        png = figures.encode(figure, "png")
        base = out / "figures" / item.name
        write_bytes(base.with_suffix(".png"), png)
        write_bytes(base.with_suffix(".pdf"), figures.encode(figure, "pdf"))
        write_json(base.with_suffix(".json"), layout)
        outcome.written += [base.with_suffix(".png"), base.with_suffix(".pdf"), base.with_suffix(".json")]
        shown.append((f"{item.name}: A, B and each method's result; inset: the region {zoom.as_list()} (x, y, w, h; {zoom.chosen})", png))
    return shown


def _settings_list(settings: Settings, names: list[str]) -> dict[str, str]:
    methods = []
    for method in settings.methods:
        if method.kind == "folder":
            methods.append(f"{method.name}: fused images from {method.folder}")
        else:
            options = ", ".join(f"{key}={value}" for key, value in sorted(method.options.items()))
            methods.append(f"{method.name}: model {method.model}" + (f" ({options})" if options else ""))
    return {
        "command": settings.command, "fusekit": __version__, "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "task": settings.task, "pairs": f"{len(settings.items)} ({settings.inputs})", "test set (paper rows)": settings.dataset or "—",
        "convention": settings.convention, "metrics": ", ".join(names), "methods": "; ".join(methods),
        "device / precision": f"{settings.device} / {settings.precision}", "output": str(settings.out),
    }
