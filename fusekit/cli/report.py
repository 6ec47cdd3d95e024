"""`fusekit report`: a paper's comparison section (tables beside the papers' numbers, figures with zoomed insets)
from a test set and a list of methods (docs/REPORT.md). Argument handling only; the work is `fusekit.app.report`."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated, Optional

import typer

from . import command
from .options import Device, Manifest, Precision, Shard, Summary, Task

HELP = """Compare fusion methods the way papers do: every method on a test set, the metrics in the convention of the paper you compare with, the papers' own rows beside yours, and comparison figures.

Pairs: two folders A_DIR B_DIR (matched by file name), --manifest, or --dataset NAME --root DIR (a downloaded benchmark, see `fusekit datasets`). --dataset also names the test set whose published rows appear (FILM, TGIF, MGFusion, TeSG, MTIF; --papers to choose, --papers none for none).

Methods: --models film,compact,gff (baselines = every training-free model of the task), each with its own --weights NAME=PATH, --text NAME=PATH, --image-features NAME=PATH, --semantics NAME=PATH; and results fused elsewhere, --fused NAME=DIR (one image per pair, named after it).

Writes into -o OUT: report.md, report.tex (booktabs), report.csv and report.html (one self-contained file) with the mean of each metric per method (best bold, second underlined, arrows for the direction), seconds per pair, parameters, the paper rows and the difference fusekit - paper where a method's name matches a paper row; figures/<pair>.png and .pdf (sources, each result, a boxed region enlarged in a corner: --zoom x,y,w,h or where the results differ most) with a .json of the panel positions. Fused images and per-pair metrics stay in OUT/fused and OUT/metrics and are reused by the next run; with --shard K/N each run measures its share and a final run without --shard writes the tables.

Example: fusekit report --dataset MSRS --root ~/data/MSRS --models compact,baselines -o msrs-report
"""


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    from ..errors import UsageError

    found: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"bad {option} {value!r}", f"write {option} NAME=PATH")
        found[name.strip().lower() if option != "--fused" else name.strip()] = path.strip()
    return found


@command("report", help=HELP)
def run(
    paths: Annotated[Optional[list[str]], typer.Argument(help="A_DIR B_DIR (or one pair A B), in the task's A/B order.", show_default=False)] = None,
    task: Task = "",
    manifest: Manifest = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Benchmark test set (see 'fusekit datasets'): its pairs under --root, and its published rows.", show_default=False)] = None,
    root: Annotated[Optional[str], typer.Option("--root", "-r", help="Folder the --dataset was downloaded to.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of --dataset under --root (default: test where it has one).", show_default=False)] = None,
    models: Annotated[Optional[str], typer.Option("--models", "-M", help="Comma-separated models to run (baselines = the task's training-free ones).", show_default=False)] = None,
    fused: Annotated[Optional[list[str]], typer.Option("--fused", help="NAME=DIR: a method's results fused elsewhere (repeatable).", show_default=False)] = None,
    weights: Annotated[Optional[list[str]], typer.Option("--weights", "-w", help="NAME=PATH: checkpoint for model NAME (repeatable).", show_default=False)] = None,
    text: Annotated[Optional[list[str]], typer.Option("--text", help="NAME=PATH: text features (file or per-pair folder) for model NAME.", show_default=False)] = None,
    image_features: Annotated[Optional[list[str]], typer.Option("--image-features", help="NAME=PATH: image features for model NAME.", show_default=False)] = None,
    semantics: Annotated[Optional[list[str]], typer.Option("--semantics", help="NAME=PATH: semantics for model NAME.", show_default=False)] = None,
    convention: Annotated[str, typer.Option("--convention", "-c", help="evaluator (FILM, TGIF, TeSG, MTIF tables) or vifb (MGFusion).")] = "evaluator",
    metrics: Annotated[Optional[str], typer.Option("--metrics", help="Comma-separated metrics (default: the ones the papers report for the test set).", show_default=False)] = None,
    paper_list: Annotated[Optional[str], typer.Option("--papers", help="Papers whose rows to show: comma-separated (FILM,TGIF,MGFusion,TeSG,MTIF) or none [default: all].", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Report folder.", show_default=False)] = None,
    zoom: Annotated[Optional[str], typer.Option("--zoom", help="Inset region x,y,w,h in source pixels (default: where the results differ most).", show_default=False)] = None,
    figure_count: Annotated[int, typer.Option("--figures", help="Figures for the first N pairs (by name).", min=0)] = 2,
    figure_pairs: Annotated[Optional[str], typer.Option("--figure-pairs", help="Comma-separated pair names to draw instead.", show_default=False)] = None,
    panel_height: Annotated[int, typer.Option("--panel-height", help="Height of each figure panel in pixels.", min=32)] = 240,
    columns: Annotated[int, typer.Option("--columns", help="Panels per figure row.", min=1)] = 6,
    device: Device = "auto",
    precision: Precision = "fp32",
    shard: Shard = None,
    summary: Summary = None,
) -> int:
    from pathlib import Path

    from .. import log
    from ..app import datasets as benchmark
    from ..app import report
    from ..app.report.figures import parse_zoom
    from ..errors import FusekitError, UsageError
    from ..io.pairs import parse_shard, select
    from ..metrics.registry import check_convention
    from .options import check_task, require_task

    if not output:
        raise UsageError("no output folder given", "add -o OUT")
    definition = benchmark.get_dataset(dataset) if dataset else None
    if definition is not None:
        if task and check_task(task) != definition.task:
            raise UsageError(f"--task {task} does not match {definition.name}, a {definition.task} test set", f"drop --task or use --task {definition.task}")
        task = definition.task
    task = require_task(task)
    if root:
        if definition is None:
            raise UsageError("--root needs --dataset", "e.g. --dataset MSRS --root DIR")
        if paths or manifest:
            raise UsageError("give pairs one way only", "--dataset/--root, folders or --manifest, not several")
        found = benchmark.find_pairs(definition, root, split)
        for warning, note in found.notes:
            (log.warn if warning else log.info)(f"{definition.name} {found.split}: {note}")
        items, problems, inputs = found.items, found.problems, f"{definition.name} {found.split} split under {root}"
    else:
        if split:
            raise UsageError("--split needs --root", "give --dataset NAME --root DIR")
        selection = select(paths or [], manifest)
        items, problems = selection.items, selection.problems
        inputs = f"manifest {manifest}" if manifest else " + ".join(paths or [])
    if not items:
        raise FusekitError("no complete pair to report on", "check the pairs named above")
    options = {"weights": _pairs(weights, "--weights"), "text": _pairs(text, "--text"),
               "image_features": _pairs(image_features, "--image-features"), "semantics": _pairs(semantics, "--semantics")}
    methods = report.parse_methods([m.strip() for m in (models or "").split(",") if m.strip()], _pairs(fused, "--fused"), options, task)
    chosen_papers = None
    if paper_list is not None:
        chosen_papers = [] if paper_list.strip().lower() == "none" else [p.strip() for p in paper_list.split(",") if p.strip()]
    settings = report.Settings(
        out=Path(output), task=task, methods=methods, items=items, problems=problems, convention=check_convention(convention),
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        dataset=definition.results_name if definition else None, papers=chosen_papers, shard=parse_shard(shard),
        device=device, precision=precision, zoom=parse_zoom(zoom), figures=figure_count,
        figure_pairs=[p.strip() for p in figure_pairs.split(",") if p.strip()] if figure_pairs else None,
        panel_height=panel_height, columns=columns, inputs=inputs, command=shlex.join(["fusekit", *sys.argv[1:]]),
    )
    outcome = report.run(settings)
    for path in outcome.written:
        log.verbose(f"wrote {path}")
    if outcome.table is not None:
        log.info(f"wrote {len(outcome.written)} files to {output} (report.md, report.tex, report.csv, report.html, figures/)")
    outcome.result.report(summary)
    return outcome.result.exit_code
