"""`fusekit models`: list the fusion models (and their needs), and import released checkpoints."""

from __future__ import annotations

import json
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
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fusion models")
    for column in ("name", "kind", "tasks", "needs", "bundled weights", "summary"):
        table.add_column(column)
    for row in rows:
        needs = ", ".join(row["needs"]) or "—"
        if row["text_encoder"]:
            needs += f" ({row['text_encoder']}, {row['text_dim']}-d)"
        table.add_row(row["name"], row["kind"], ", ".join(row["tasks"]), needs, ", ".join(row["bundled_weights"]) or "—", row["summary"])
    Console().print(table)


models_app.callback(invoke_without_command=True)(with_common_options("models")(list_models))
