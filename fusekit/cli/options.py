"""Option types shared by several subcommands, declared once so every command spells them the same way."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..guidance.text.base import TEXT_ENCODERS
from ..guidance.vision.base import IMAGE_ENCODERS
from ..io.formats import TASKS
from .listing import known

Task = Annotated[str, typer.Option("--task", "-t", help=f"Fusion task: {', '.join(TASKS)} (infrared-visible, medical, multi-exposure, multi-focus).")]
Device = Annotated[str, typer.Option("--device", help="Where models run: auto (CUDA when available), cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option("--precision", help="Arithmetic precision: fp32, bf16 or fp16 (fp16 on CUDA only).")]
Manifest = Annotated[Optional[str], typer.Option("--manifest", "-m", help="JSON Lines file of items ({\"a\": ..., \"b\": ..., \"name\": ...}); see docs/FORMATS.md.")]
Shard = Annotated[Optional[str], typer.Option("--shard", help="Process only shard K/N (K from 0) of the name-sorted items [default: from SLURM_ARRAY_TASK_ID/COUNT when set].")]
SkipExisting = Annotated[bool, typer.Option("--skip-existing", help="Skip items whose outputs already exist.")]
Summary = Annotated[Optional[str], typer.Option("--summary", help="Write a JSON run summary (processed, skipped, failed, time) to this file.")]

# The guidance options of `fuse` and `train`: the same names, meaning and help (docs/FUSE.md, docs/TRAIN.md).
Text = Annotated[Optional[str], typer.Option("--text", help="Text features: a file (encode-text .safetensors, or VLF .npy) for every pair, or a folder of per-pair files matched by pair name or image hashes.", show_default=False)]
ImageFeatures = Annotated[Optional[str], typer.Option("--image-features", help="Image features (encode-image): a file, or a folder of per-pair files.", show_default=False)]
Semantics = Annotated[Optional[str], typer.Option("--semantics", help="Semantics (mask + text semantics, from fusekit semantics): a file, or a folder of per-pair files.", show_default=False)]
Describer = Annotated[Optional[str], typer.Option("--describer", help="Compute text guidance with these describer backends (e.g. stats), cached [default: the recipe the weights or the model record, when offline or recorded].", show_default=False)]
Encoder = Annotated[Optional[str], typer.Option("--encoder", help=f"Text encoder of computed text guidance: {known(TEXT_ENCODERS)} [default: the weights' or the model's].", show_default=False)]
EncoderModel = Annotated[Optional[str], typer.Option("--encoder-model", help="Text encoder model id or local folder.", show_default=False)]
ImageEncoder = Annotated[Optional[str], typer.Option("--image-encoder", help=f"Compute image embeddings with this encoder ({known(IMAGE_ENCODERS)}), cached.", show_default=False)]
ImageEncoderModel = Annotated[Optional[str], typer.Option("--image-encoder-model", help="Image encoder model id or local folder.", show_default=False)]


def guidance_options(text, image_features, semantics, describer, encoder, encoder_model, image_encoder, image_encoder_model, cache=None):
    """The shared guidance options as the application layer takes them."""
    from ..app.guidance import GuidanceOptions

    return GuidanceOptions(text=text, image_features=image_features, semantics=semantics, describer=describer, encoder=encoder,
                           encoder_model=encoder_model, image_encoder=image_encoder, image_encoder_model=image_encoder_model, cache=cache)


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
