"""Option types shared by several subcommands, declared once so every command spells them the same way."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..io.formats import TASKS

Task = Annotated[str, typer.Option("--task", "-t", help=f"Fusion task: {', '.join(TASKS)} (infrared-visible, medical, multi-exposure, multi-focus).")]
Device = Annotated[str, typer.Option("--device", help="Where models run: auto (CUDA when available), cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option("--precision", help="Arithmetic precision: fp32, bf16 or fp16 (fp16 on CUDA only).")]
Manifest = Annotated[Optional[str], typer.Option("--manifest", "-m", help="JSON Lines file of items ({\"a\": ..., \"b\": ..., \"name\": ...}); see docs/FORMATS.md.")]
Shard = Annotated[Optional[str], typer.Option("--shard", help="Process only shard K/N (K from 0) of the name-sorted items [default: from SLURM_ARRAY_TASK_ID/COUNT when set].")]
SkipExisting = Annotated[bool, typer.Option("--skip-existing", help="Skip items whose outputs already exist.")]
Summary = Annotated[Optional[str], typer.Option("--summary", help="Write a JSON run summary (processed, skipped, failed, time) to this file.")]


def check_task(task: str) -> str:
    from ..errors import UsageError

    task = task.strip().lower()
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
    return task


def require_task(task: str) -> str:
    """`check_task` for commands whose --task has no default: an empty one is a missing option, not an unknown task."""
    from ..errors import UsageError

    if not task:
        raise UsageError("--task is required", "add --task ivf, mif, mef or mff")
    return check_task(task)
