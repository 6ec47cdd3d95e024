"""`fusekit train`: train a registered fusion model with its paper's losses and schedule (docs/TRAIN.md)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..app.train.presets import PRESETS
from . import command
from .options import (Describer, Device, Encoder, EncoderModel, ImageEncoder, ImageEncoderModel, ImageFeatures, Precision, Semantics,
                      Text, check_task, guidance_options)

HELP = """Train a learned fusion model (see `fusekit models`) with its paper's loss, optimiser and schedule.

--data is a folder of pairs (role folders such as ir/ + vi/, at most three levels down; a root with one folder per task, like shared/train, is narrowed to --task), a VLF dataset root (Image/, TextFeature/, train.txt), or a JSON Lines manifest. --val takes the same forms and is scored after every epoch with `fusekit metrics` (evaluator convention).

Guidance the model needs comes from files (--text/--image-features/--semantics, or the manifest's / VLF's own) or is computed once per pair and cached: with --describer/--encoder for text or --image-encoder for image embeddings, and without options when the model's recipe is offline (compact: stats + offline). The checkpoint records the recipe, so fuse computes the same guidance. Guidance other than the paper's (e.g. film on offline text) is warned about once.

Writes into --out: run.json (all settings), data.jsonl (the pairs, hashed into every checkpoint), log.jsonl (train and validation rows), checkpoints/step-N.safetensors (+ .state.pt for --resume) and, at the end, model.safetensors for `fusekit fuse --weights`. Ctrl-C or SIGTERM saves a resumable checkpoint and exits 130/143. Runs unchanged under torchrun (DDP; --batch-size is the global batch).

Example: fusekit train --model compact --task ivf --data shared/train --val shared/data --crop 96 --epochs 20 --out runs/ivf
"""


def _parse_sets(values: list[str]) -> dict:
    parsed = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad --set {value!r}", "write KEY=VALUE, e.g. --set dim=16")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


def _read_config(path: str | None) -> dict:
    if not path:
        return {}
    from ..errors import FusekitError

    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FusekitError(f"cannot read --config {path} ({exc.strerror})", "check the path") from exc
    except json.JSONDecodeError as exc:
        raise FusekitError(f"--config {path} is not JSON (line {exc.lineno})", "give a JSON object of config fields") from exc
    if not isinstance(values, dict):
        raise FusekitError(f"--config {path} is not a JSON object", "give {\"field\": value, ...}")
    return values


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip() and name.strip() != "none"]


@command("train", help=HELP)
def run(
    model: Annotated[Optional[str], typer.Option("--model", "-M", help="Model to train (a learned one from `fusekit models`).")] = None,
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Fusion task: ivf, mif, mef or mff.")] = None,
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="Training pairs: folder tree, VLF root or manifest.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Run folder (checkpoints, logs, final model.safetensors).")] = "train-out",
    val: Annotated[Optional[str], typer.Option("--val", help="Validation pairs (same forms as --data), scored every epoch.")] = None,
    split: Annotated[str, typer.Option("--split", help="VLF list to train on (train.txt or test.txt).")] = "train",
    preset: Annotated[Optional[str], typer.Option("--preset", help=f"Optimiser/schedule preset: {', '.join(PRESETS.names(plugins=False))} [default: the model's].")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs [default: preset].")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Global batch size [default: preset].")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Initial learning rate [default: preset].")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help="adam or adamw [default: preset].")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="Weight decay [default: preset].")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="constant, cosine, step:S:G, warmup:W:P [default: preset].")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", min=0, help="Random square crop side in pixels; 0 = whole images [default: preset].")] = None,
    resize: Annotated[Optional[str], typer.Option("--resize", help="film (FILM's 288x384 training size) or none [default: preset].")] = None,
    augment: Annotated[Optional[str], typer.Option("--augment", help="Comma-separated augmentations after the crop: flip, rot90, none [default: preset].")] = None,
    paper_augment: Annotated[bool, typer.Option("--paper-augment/--no-paper-augment", help="Apply the model's paper augmentation before the crop (e.g. MTIF's enrichment; --no-paper-augment is its ablation).")] = True,
    grad_clip: Annotated[Optional[float], typer.Option("--grad-clip", help="Clip the gradient norm to this value [default: preset].")] = None,
    loss: Annotated[Optional[str], typer.Option("--loss", help="Loss name [default: the model's].")] = None,
    config: Annotated[Optional[str], typer.Option("--config", help="JSON file of model config fields to change.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Model config field KEY=VALUE (JSON value); repeatable.")] = None,
    init: Annotated[Optional[str], typer.Option("--init", help="Start from these weights (fusekit checkpoint or released .pth).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of weights init and sample order.")] = 0,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic kernels only (slower on CUDA).")] = False,
    device: Device = "auto",
    precision: Precision = "fp32",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its newest checkpoint (only --epochs, --max-steps, --checkpoint-every, --keep, --log-every, --val-every, --device, --precision, --workers may change).")] = False,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after this many optimizer steps in total.")] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=0, help="Also checkpoint every N steps (0: each epoch only).")] = 0,
    keep: Annotated[int, typer.Option("--keep", min=1, help="Checkpoints kept in --out/checkpoints.")] = 3,
    log_every: Annotated[int, typer.Option("--log-every", min=1, help="Write a train row to log.jsonl every N steps.")] = 10,
    val_every: Annotated[int, typer.Option("--val-every", min=1, help="Validate every N epochs.")] = 1,
    val_metrics: Annotated[Optional[str], typer.Option("--val-metrics", help="Comma-separated metrics [default: the metrics module's default set].")] = None,
    val_crop: Annotated[Optional[int], typer.Option("--val-crop", min=1, help="Validate on a centre crop of this side (faster).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Data loader worker processes (pairs are in memory; 0 is usually fastest on CPU).")] = 0,
    text: Text = None,
    image_features: ImageFeatures = None,
    semantics: Semantics = None,
    describer: Describer = None,
    encoder: Encoder = None,
    encoder_model: EncoderModel = None,
    image_encoder: ImageEncoder = None,
    image_encoder_model: ImageEncoderModel = None,
    cache: Annotated[Optional[str], typer.Option("--cache", help="Folder for computed guidance [default: $FUSEKIT_CACHE/train-guidance or ~/.cache/fusekit/train-guidance].")] = None,
) -> int:
    from ..app.train.loop import Settings, train

    if task is not None:
        task = check_task(task)
    if resize is not None and resize.strip().lower() not in ("film", "none"):
        raise UsageError(f"unknown --resize {resize!r}", "use film or none")
    overrides = _read_config(config)
    overrides.update(_parse_sets(set_ or []))
    settings = Settings(
        model=model, task=task, data=data, out=out, val=val, split=split, preset=preset, epochs=epochs,
        batch_size=batch_size, lr=lr, optimizer=optimizer.lower() if optimizer else None, weight_decay=weight_decay,
        schedule=schedule, crop=crop, resize=resize.strip().lower() if resize else None, augment=_names(augment),
        paper_augment=paper_augment,
        grad_clip=grad_clip, loss=loss, config=overrides, init=init, seed=seed, deterministic=deterministic,
        device=device, precision=precision, resume=resume, max_steps=max_steps, checkpoint_every=checkpoint_every,
        keep=keep, log_every=log_every, val_every=val_every, val_metrics=_names(val_metrics), val_crop=val_crop,
        workers=workers,
        guidance=guidance_options(text, image_features, semantics, describer, encoder, encoder_model, image_encoder,
                                  image_encoder_model, cache),
        command=shlex.join(["fusekit", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else "fusekit train",
    )
    return train(settings)
