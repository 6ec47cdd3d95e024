"""`fusekit models`: list the fusion models (and their needs), and import released checkpoints."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from . import app, command, with_common_options

models_app = typer.Typer(no_args_is_help=False)
app.add_typer(models_app, name="models")


def list_models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """List fusion models: name, kind (learned or training-free), tasks, features needed, bundled weights."""
    if ctx.invoked_subcommand is not None:
        return
    from ..models import FUSION_MODELS

    rows = [spec.describe() for _, spec in FUSION_MODELS.items()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = ("name", "kind", "tasks", "needs", "bundled weights", "summary")
    cells = []
    for row in rows:
        needs = ", ".join(row["needs"]) or "—"
        if row["text_encoder"]:
            needs += f" ({row['text_encoder']}, {row['text_dim']}-d)"
        cells.append((row["name"], row["kind"], ", ".join(row["tasks"]), needs, ", ".join(row["bundled_weights"]) or "—", row["summary"]))
    if not sys.stdout.isatty():  # a pipe or a file gets tab-separated values, as `fusekit metrics` writes them
        typer.echo("\n".join("\t".join(line) for line in [columns, *cells]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fusion models")
    for column in columns:
        table.add_column(column)
    for line in cells:
        table.add_row(*line)
    Console().print(table)


models_app.callback(invoke_without_command=True)(with_common_options("models")(list_models))


@command("import", group=models_app, label="models import")
def import_weights(
    source: Annotated[str, typer.Argument(help="Released checkpoint (.pth, or a bare state dict in .safetensors).", show_default=False)],
    model: Annotated[str, typer.Option("--model", "-M", help="The model the weights belong to (e.g. film).")] = "",
    task: Annotated[str, typer.Option("--task", "-t", help="Task the weights were trained for: ivf, mif, mef or mff.")] = "",
    output: Annotated[str, typer.Option("--output", "-o", help="fusekit checkpoint to write (.safetensors).")] = "",
) -> None:
    """Convert a released checkpoint into a fusekit checkpoint with metadata (model, task, expected features).

    Example: fusekit models import IVF.pth --model film --task ivf -o film_ivf.safetensors
    """
    from ..errors import UsageError
    from ..models.checkpoints import import_checkpoint
    from .options import check_task

    if not model or not task or not output:
        raise UsageError("--model, --task and -o are required", "e.g. fusekit models import IVF.pth --model film --task ivf -o film_ivf.safetensors")
    metadata = import_checkpoint(source, model, check_task(task), output)
    from .. import log

    log.info(f"wrote {output} (model {model}, task {task}, from {metadata['source']})")
