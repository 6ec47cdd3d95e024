"""`fusekit metrics`: the field's fusion metrics for one triple (F A B), two/three folders or a manifest
(docs/METRICS.md). Argument handling and output formats only; the numbers come from `fusekit.metrics`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import UsageError
from . import command
from .batching import run_work, work_for
from .options import Manifest, Shard, Summary

HELP = """Fusion metrics of fused images against their sources, number for number as a paper's reference computes them.

--convention evaluator (default) is the CDDFuse/FILM Python evaluator (FILM, TGIF, MTIF tables): EN SD SF AG MI MSE CC PSNR SCD VIF Qabf SSIM. --convention vifb is the VIFB MATLAB toolbox: EN CE MI PSNR AG EI Qabf SD SF RMSE SSIM Qcb Qcv (Qcv: MGFusion). The two disagree on SF, AG, SSIM and PSNR; say which one you report. `fusekit metrics --list` shows every metric.

Output: a table on a terminal, tab-separated values when stdout is a pipe or file, --json (rows, means, convention, version) or --csv; -o FILE writes atomically (format from --json/--csv or the suffix). A value undefined for a triple (e.g. SCD when F equals a source) is null/empty with a warning. Triples that cannot be read or whose sizes differ are reported and skipped; the exit code is then 1.

Many triples: --fused DIR --a DIR --b DIR (matched by file stem), or --manifest with one {"fused": ..., "a": ..., "b": ..., "name": ...} object per line.

Example: fusekit metrics fused.png ir.png vi.png --json
"""


@command("metrics", help=HELP)
def run(
    paths: Annotated[Optional[list[str]], typer.Argument(help="F A B: the fused image and its two sources, or three folders matched by file name.", show_default=False)] = None,
    fused: Annotated[Optional[str], typer.Option("--fused", "-f", help="Folder of fused images (with --a and --b; matched by file name).")] = None,
    folder_a: Annotated[Optional[str], typer.Option("--a", help="Folder of A sources.")] = None,
    folder_b: Annotated[Optional[str], typer.Option("--b", help="Folder of B sources.")] = None,
    manifest: Manifest = None,
    metrics: Annotated[Optional[str], typer.Option("--metrics", "-M", help="Comma-separated metric names or aliases (default: all of the convention's).", show_default=False)] = None,
    convention: Annotated[str, typer.Option("--convention", "-c", help="evaluator (CDDFuse/FILM Python evaluator) or vifb (VIFB MATLAB toolbox).")] = "evaluator",
    as_json: Annotated[bool, typer.Option("--json", help="Write the metrics JSON document (docs/FORMATS.md).")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write comma-separated values, one row per triple.")] = False,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write here instead of stdout (- = stdout).")] = None,
    list_metrics: Annotated[bool, typer.Option("--list", help="List the metrics, their conventions and which way is better, then exit.")] = False,
    shard: Shard = None,
    summary: Summary = None,
) -> int:
    from ..metrics import output as out
    from ..memory import MiB, keep_freed_memory
    from ..metrics.registry import check_convention, needs_sources, resolve

    if list_metrics:
        out.print_registry(as_json)
        return 0
    if as_json and as_csv:
        raise UsageError("--json and --csv both given", "choose one output format")
    convention = check_convention(convention)
    names = resolve(metrics, convention)
    paths = paths or []
    with_sources = needs_sources(names) or len(paths) == 3 or bool(folder_a or folder_b) or manifest is not None
    roles = ("fused", "a", "b") if with_sources else ("fused",)
    work = work_for(paths, manifest, shard, roles=roles, folders={"fused": fused, "a": folder_a, "b": folder_b})
    items = work.items  # matching problems are reported by shard 0 only, as every command does
    fmt = out.choose_format(as_json, as_csv, output)
    if output:
        from ..io.atomic import check_not_input

        check_not_input(output, [path for item in items for path in item.paths.values()])

    keep_freed_memory(largest_block=32 * MiB, kept=512 * MiB)  # a batch's image temporaries, reused
    rows: dict[str, dict] = {}

    def load(item):
        from ..io.images import read_image

        return {role: read_image(path) for role, path in item.paths.items()}

    def process(item, images):
        from ..metrics import compute

        values = compute(images["fused"], images.get("a"), images.get("b"), names, convention)
        rows[item.name] = out.row(item, names, values)

    def write_rows(result) -> None:
        ordered = [rows[item.name] for item in items if item.name in rows]
        out.write(output or "-", fmt, convention, names, ordered, result.failed)

    return run_work(work, process, summary=summary, before_report=write_rows, load=load)
