"""The training run: settings, data, model, optimizer, the step loop, validation, checkpoints, interruption.

`train(settings)` is what ``fusekit train`` calls. It records everything needed to repeat the run in
``<out>/run.json`` (resolved preset, model config, data hash, command), logs JSON Lines to ``<out>/log.jsonl``
(``{"kind": "train", ...}`` every ``log_every`` steps, ``{"kind": "val", ...}`` after each epoch), writes
checkpoints (`fusekit.app.train.state`) and finally ``<out>/model.safetensors``, a checkpoint `fuse --weights` reads.

Ctrl-C or SIGTERM (a scheduler's pre-emption) finishes the current step, writes a resumable checkpoint and returns
130 / 143; ``--resume`` continues from the newest checkpoint with the same step count, optimizer state and sample
order. Under torchrun every process runs this same function (see `fusekit.app.train.distributed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from ... import __version__, log
from ...errors import FusekitError, UsageError
from ...io.atomic import write_text
from ...io.formats import dump_json, sha256_file
from . import distributed, state
from ...models.augment import AUGMENTATIONS
from . import degraded  # noqa: F401  (registers the degrade-<task> augmentations)
from ..guidance import TENSORS_FOR, GuidanceOptions, GuidanceProvider, default_cache_dir
from .layouts import find_pairs
from ...models.losses import LOSSES
from .presets import PRESETS, schedule_factor
from .validate import model_outputs, validate

# What validation reports unless --val-metrics says otherwise: the six metrics of FILM's tables.
VAL_METRICS = ["EN", "SD", "SF", "AG", "VIF", "Qabf"]
# Options that may differ when resuming (everything else is taken from the run being resumed).
RESUMABLE_CHANGES = ("epochs", "max_steps", "checkpoint_every", "keep", "log_every", "device", "precision", "workers", "val_every")


@dataclass
class Settings:
    """Everything `fusekit train` was asked to do (None = the preset's or the model's default)."""

    model: str | None = None
    task: str | None = None
    data: str | None = None
    out: str = "train-out"
    val: str | None = None
    split: str = "train"  # VLF list to train on
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    crop: int | None = None  # 0 = whole images
    resize: str | None = None  # "film" or "none"
    augment: list[str] | None = None
    paper_augment: bool = True  # apply spec.train_augment (False: the paper's "without it" ablation)
    grad_clip: float | None = None
    loss: str | None = None
    config: dict = field(default_factory=dict)  # model config overrides
    init: str | None = None  # start from these weights
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    precision: str = "fp32"
    resume: bool = False
    max_steps: int | None = None
    checkpoint_every: int = 0  # steps; 0 = at the end of each epoch only
    keep: int = 3
    log_every: int = 10
    val_every: int = 1
    val_metrics: list[str] | None = None  # None: FILM's six (VAL_METRICS)
    val_crop: int | None = None
    workers: int = 0
    guidance: GuidanceOptions = field(default_factory=GuidanceOptions)
    command: str = ""


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps; a second Ctrl-C stops at once."""

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a library thread): no handlers
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        log.info(f"{signal.Signals(signum).name} received: finishing this step and saving a checkpoint")

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signal) if self.signal is not None else 0


class SkipSampler:
    """The first `skip` indices of a sampler dropped: resuming mid-epoch replays the epoch's order from there."""

    def __init__(self, sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        indices = list(iter(self.sampler))
        return iter(indices[self.skip:])

    def __len__(self):
        return max(len(self.sampler) - self.skip, 0)


def _training_forward_module(model):
    """A module whose forward is the model's training forward, so DDP hooks see `training_outputs` calls too."""
    import torch

    class TrainingForward(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, a, b, guidance: dict):
            return model_outputs(self.inner, a, b, guidance)

    return TrainingForward(model)


# ---------------------------------------------------------------------------------------------- resolution


def resolve_model_config(spec, overrides: dict):
    """The model's config dataclass with `overrides` applied; unknown fields are a usage error."""
    base = spec.config()
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"model {spec.name!r} has no config field {unknown[0]!r}", f"fields: {', '.join(sorted(known))}")
    return dataclasses.replace(base, **overrides)


def check_feature_widths(config, info) -> None:
    """Refuse features whose width differs from the model config's (`text_dim` / `image_dim`), in one line."""
    for field_name, found, option in (("text_dim", info.text_dim, "--text"), ("image_dim", info.image_dim, "--image-features")):
        expected = getattr(config, field_name, None)
        if expected is not None and found is not None and int(expected) != int(found):
            raise FusekitError(f"the guidance features are {found}-d but the model's {field_name} is {expected}",
                               f"use --set {field_name}={found}, or {option} features of width {expected}")


def load_run_settings(out: str, given: Settings) -> Settings:
    """For --resume: the stored settings of the run in `out`, with the options that may change taken from `given`."""
    path = Path(out) / "run.json"
    if not path.is_file():
        raise FusekitError(f"nothing to resume in {out} (no run.json)", "start the run without --resume")
    stored = json.loads(path.read_text(encoding="utf-8"))["settings"]
    stored["guidance"] = GuidanceOptions(**stored["guidance"])
    settings = Settings(**stored)
    for name in ("model", "task", "data"):
        value = getattr(given, name)
        if value is not None and str(value) != str(getattr(settings, name)):
            raise UsageError(f"--{name} {value} differs from the run being resumed ({getattr(settings, name)})", f"drop --{name} or start a new --out")
    for name in RESUMABLE_CHANGES:
        value, default = getattr(given, name), getattr(Settings, name, None)
        if value is not None and value != default:
            setattr(settings, name, value)
    settings.resume, settings.command = True, given.command
    return settings


# ------------------------------------------------------------------------------------------------- the run


def train(settings: Settings) -> int:
    """Run (or resume) a training run; returns the exit code (0, or 130/143 when interrupted)."""
    import torch

    if settings.resume:
        settings = load_run_settings(settings.out, settings)
    for name in ("model", "task", "data"):
        if not getattr(settings, name):
            raise UsageError(f"--{name} is required", "see 'fusekit train --help'")
    ctx = distributed.setup(settings.device)
    try:
        with StopRequest() as stop:
            return _run(settings, ctx, stop, torch)
    finally:
        distributed.teardown(ctx)


def _run(settings: Settings, ctx, stop: StopRequest, torch) -> int:
    from ...devices import resolve_precision
    from ...models import FUSION_MODELS
    from ...models.checkpoints import check_state, config_from_metadata, read_weights, save_checkpoint

    spec = FUSION_MODELS.get(settings.model)
    task = settings.task
    if spec.kind != "learned":
        raise FusekitError(f"model {spec.name!r} is training-free; there is nothing to train", "pick a learned model (fusekit models)")
    if task not in spec.tasks:
        raise FusekitError(f"model {spec.name!r} does not serve task {task!r}", f"it serves {', '.join(spec.tasks)}")
    out = Path(settings.out)
    existing = state.complete_checkpoints(out)
    if existing and not settings.resume:
        raise FusekitError(f"{out} already holds a training run", "continue it with --resume or choose another --out")
    if settings.resume and not existing:
        raise FusekitError(f"{out} has no complete checkpoint to resume from", "start the run again without --resume")

    preset = PRESETS.get(settings.preset or spec.train_preset or "default").with_overrides(
        epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr, optimizer=settings.optimizer,
        weight_decay=settings.weight_decay, schedule=settings.schedule, grad_clip=settings.grad_clip,
        augment=tuple(settings.augment) if settings.augment is not None else None,
    )
    if settings.crop is not None:
        preset = dataclasses.replace(preset, crop=settings.crop or None)
    if settings.resize is not None:
        preset = dataclasses.replace(preset, resize=None if settings.resize == "none" else settings.resize)
    paper_augment = spec.train_augment.format(task=task) if settings.paper_augment and spec.train_augment else None
    for name in preset.augment + ((paper_augment,) if paper_augment else ()):
        AUGMENTATIONS.canonical(name)
    loss_name = LOSSES.canonical(settings.loss or spec.default_loss or "film")
    loss_fn = LOSSES.get(loss_name)
    if preset.batch_size % ctx.world:
        raise UsageError(f"batch size {preset.batch_size} is not divisible by the {ctx.world} processes", "the batch size is global: use a multiple of the process count")
    per_rank = preset.batch_size // ctx.world
    config = None if settings.resume else resolve_model_config(spec, settings.config)

    device = ctx.device
    dtype = resolve_precision(settings.precision, device)
    _seed_everything(settings.seed, settings.deterministic, device, torch)

    # ---- data
    settings.guidance.task = task
    if (settings.guidance.describer or settings.guidance.image_encoder) and not settings.guidance.cache:
        settings.guidance.cache = default_cache_dir()
    selection = find_pairs(settings.data, task, settings.split)
    for name, reason in selection.problems:
        log.warn(f"skipping {name}: {reason}")
    if not selection.items:
        raise FusekitError(f"no usable training pairs in {settings.data}", "see the warnings above")
    provider = GuidanceProvider(spec.guidance, settings.guidance)
    provider.check_available(selection.items)
    if len(selection.items) < preset.batch_size:
        raise FusekitError(f"only {len(selection.items)} training pairs for a batch of {preset.batch_size}", "lower --batch-size")
    val_items = []
    if settings.val:
        val_selection = find_pairs(settings.val, task, "test")
        for name, reason in val_selection.problems:
            log.warn(f"skipping validation pair {name}: {reason}")
        val_items = val_selection.items
        provider.check_available(val_items)
    from .dataset import PairDataset, Pipeline, collate, load_pairs

    keep_rgb = bool(getattr(loss_fn, "needs_rgb", False))
    if ctx.distributed and not ctx.is_main:
        distributed.barrier(ctx)  # rank 0 computes and caches on-the-fly guidance first
    pairs = load_pairs(selection.items, keep_rgb, provider)
    val_pairs = load_pairs(val_items, keep_rgb, provider, "loading validation pairs") if val_items and ctx.is_main else []
    if ctx.distributed and ctx.is_main:
        distributed.barrier(ctx)
    if stop.signal is not None:
        log.info("stopped before the first step; nothing to save")
        return stop.exit_code
    pipeline = Pipeline(resize=preset.resize, paper_augment=paper_augment, crop=preset.crop, extra=preset.augment)
    if per_rank > 1 and not pipeline.fixed_shape() and len({p.shape for p in pairs}) > 1:
        raise UsageError("training pairs differ in size and batches need one size", "use --crop N, --resize film or --batch-size 1")
    manifest_text = "".join(json.dumps({"name": i.name, "a": i.a, "b": i.b, "sha256_a": sha256_file(i.a), "sha256_b": sha256_file(i.b)}, sort_keys=True) + "\n" for i in selection.items)
    data_sha = hashlib.sha256(manifest_text.encode()).hexdigest()

    # ---- model and optimizer
    resume_from = existing[-1] if settings.resume else None
    if resume_from is not None:
        weights, stored = read_weights(resume_from[1], spec)
        config = config_from_metadata(spec, stored.get("config"), str(resume_from[1]))
    check_feature_widths(config, provider.info)
    model = spec.build(config)
    if resume_from is not None:
        check_state(weights, model, str(resume_from[1]), spec.name)
        model.load_state_dict(weights)
    elif settings.init:
        init_state, init_meta = read_weights(settings.init, spec)
        if init_meta.get("config") and not settings.config:
            config = config_from_metadata(spec, init_meta["config"], settings.init)
            model = spec.build(config)
        check_state(init_state, model, settings.init, spec.name)
        model.load_state_dict(init_state)
    model = model.to(device)
    optimizer_cls = torch.optim.AdamW if preset.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(model.parameters(), lr=preset.lr, weight_decay=preset.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    step, epoch, batch_in_epoch = 0, 0, 0
    if resume_from is not None:
        saved = state.read_state(resume_from[2])
        if saved.get("data_sha256") != data_sha:
            raise FusekitError(f"the training data changed since {resume_from[1].name} was written", "resume with the same data or start a new --out")
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["torch_rng"])
        step, epoch, batch_in_epoch = int(saved["step"]), int(saved["epoch"]), int(saved["batch_in_epoch"])
        log.info(f"resuming from {resume_from[1]} (step {step}, epoch {epoch + 1})")

    train_module = _training_forward_module(model)
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        train_module = DistributedDataParallel(train_module, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 else None

    dataset = PairDataset(pairs, pipeline, settings.seed)
    from torch.utils.data import DataLoader, DistributedSampler

    sampler = DistributedSampler(dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=settings.seed, drop_last=False)
    batches_per_epoch = len(sampler) // per_rank
    guidance_names = [name for source in spec.guidance for name in TENSORS_FOR[source]]

    run = _RunFiles(out, ctx)
    run_record = {
        "settings": _settings_record(settings), "preset": dataclasses.asdict(preset), "loss": loss_name,
        "model_config": dataclasses.asdict(config), "data_sha256": data_sha, "pairs": len(pairs),
        "val_pairs": len(val_items), "world_size": ctx.world, "fusekit_version": __version__,
        "guidance": dataclasses.asdict(provider.info),
    }
    run.start(run_record, manifest_text, resumed=resume_from is not None)
    meta = {
        "loss": loss_name, "train_command": settings.command, "train_data": str(settings.data),
        "data_manifest_sha256": data_sha, "preset": json.dumps(dataclasses.asdict(preset), sort_keys=True),
    }
    for key, value in dataclasses.asdict(provider.info).items():
        if value is not None:
            meta[key] = str(value)

    def save(at_epoch: int, at_batch: int) -> Path:
        weights_path, state_path = state.paths_for(out, step)
        if ctx.is_main:
            state.write_state(state_path, {
                "step": step, "epoch": at_epoch, "batch_in_epoch": at_batch, "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "torch_rng": torch.get_rng_state(),
                "data_sha256": data_sha,
            })
            save_checkpoint(weights_path, spec.name, model, config, task, step=str(step), epoch=str(at_epoch), **meta)
            state.prune(out, settings.keep)
        distributed.barrier(ctx)
        return weights_path

    if ctx.is_main:
        log.info(f"training {spec.name} for {task} on {len(pairs)} pairs ({selection.items[0].name}, …), "
                 f"{preset.epochs} epochs × {batches_per_epoch} steps, batch {preset.batch_size}, {ctx.world} process(es) on {device}")
    progress = _Progress(ctx.is_main, log.progress_enabled(), preset.epochs, batches_per_epoch)
    model.train()
    stopped = False
    last_saved_step = step if resume_from is not None else -1
    with progress:
        if val_pairs and ctx.is_main and resume_from is None:
            _validate_and_log(run, progress, model, val_pairs, task, loss_fn, guidance_names, device, settings, autocast, stop, step, 0)
        distributed.barrier(ctx)
        while epoch < preset.epochs and not stopped and not (settings.max_steps and step >= settings.max_steps):
            lr = preset.lr * schedule_factor(preset.schedule, epoch, preset.epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            loader = DataLoader(dataset, batch_size=per_rank, sampler=SkipSampler(sampler, batch_in_epoch * per_rank),
                                collate_fn=collate, num_workers=settings.workers, drop_last=True,
                                persistent_workers=False)
            progress.epoch(epoch, batch_in_epoch)
            tick, seen = time.perf_counter(), 0
            for batch in loader:
                batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
                guidance = {name: batch[name] for name in guidance_names}
                with autocast() if autocast else contextlib.nullcontext():
                    outputs = train_module(batch["a"], batch["b"], guidance)
                loss, parts = loss_fn(outputs, batch, task)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if preset.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), preset.grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                step += 1
                batch_in_epoch += 1
                seen += batch["a"].shape[0] * ctx.world
                if step % settings.log_every == 0 or batch_in_epoch == batches_per_epoch:
                    names = sorted(parts)
                    values = distributed.mean(ctx, [float(loss.detach())] + [parts[n] for n in names])
                    rate = seen / max(time.perf_counter() - tick, 1e-9)
                    run.log({"kind": "train", "step": step, "epoch": epoch + 1, "loss": values[0],
                             "parts": dict(zip(names, values[1:])), "lr": lr, "pairs_per_s": rate})
                    progress.update(batch_in_epoch, values[0], rate)
                else:
                    progress.update(batch_in_epoch)
                if distributed.any_true(ctx, stop.signal is not None):
                    stopped = True
                elif settings.checkpoint_every and step % settings.checkpoint_every == 0:
                    save(epoch, batch_in_epoch)
                    last_saved_step = step
                if stopped or (settings.max_steps and step >= settings.max_steps):
                    break
            if stopped or (settings.max_steps and step >= settings.max_steps and batch_in_epoch < batches_per_epoch):
                break
            epoch, batch_in_epoch = epoch + 1, 0
            if val_pairs and ctx.is_main and (epoch % settings.val_every == 0 or epoch == preset.epochs):
                _validate_and_log(run, progress, model, val_pairs, task, loss_fn, guidance_names, device, settings, autocast, stop, step, epoch)
            distributed.barrier(ctx)
            stopped = stopped or distributed.any_true(ctx, stop.signal is not None)
            if step != last_saved_step:
                save(epoch, 0)
                last_saved_step = step
            if settings.max_steps and step >= settings.max_steps:
                break
    if step != last_saved_step:
        save(epoch, batch_in_epoch)
    latest = state.paths_for(out, step)[0]
    if stopped:
        log.info(f"interrupted at step {step}; checkpoint {latest} (continue with --resume --out {out})")
        return stop.exit_code
    if ctx.is_main:
        final = out / "model.safetensors"
        _copy_atomically(latest, final)
        log.info(f"done: {step} steps; weights {final} (use: fusekit fuse --model {spec.name} --weights {final})")
    distributed.barrier(ctx)
    return 0


def _validate_and_log(run, progress, model, val_pairs, task, loss_fn, guidance_names, device, settings, autocast, stop, step, epoch) -> None:
    """One validation pass logged as a ``val`` row (epoch 0 = the initial weights); skipped when interrupted."""
    result = validate(model, val_pairs, task, loss_fn, guidance_names, device, settings.val_metrics or VAL_METRICS,
                      settings.val_crop, autocast, should_stop=lambda: stop.signal is not None)
    if result is not None:
        run.log({"kind": "val", "step": step, "epoch": epoch, **result})
        label = "initial weights" if epoch == 0 else f"epoch {epoch}"
        progress.note(f"{label}: val loss {result['loss']:.4g}, " + ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items()))


def _copy_atomically(source: Path, target: Path) -> None:
    from ...io.atomic import write_bytes

    write_bytes(target, source.read_bytes())


def _seed_everything(seed: int, deterministic: bool, device, torch) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _settings_record(settings: Settings) -> dict:
    record = dataclasses.asdict(settings)
    record["resume"] = False
    return record


class _RunFiles:
    """run.json, data.jsonl and log.jsonl in the output folder (written by rank 0 only)."""

    def __init__(self, out: Path, ctx):
        self.out, self.ctx = out, ctx

    def start(self, record: dict, manifest_text: str, resumed: bool) -> None:
        if not self.ctx.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if not resumed:
            write_text(self.out / "run.json", dump_json(record))
            write_text(self.out / "data.jsonl", manifest_text)

    def log(self, row: dict) -> None:
        if not self.ctx.is_main:
            return
        row = {"time": round(time.time(), 3), **row}
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as stream:
            stream.write(json.dumps(row, sort_keys=True) + "\n")
        log.verbose(json.dumps(row, sort_keys=True))


class _Progress:
    """A rich progress bar on a terminal, plain info lines per epoch otherwise; silent on ranks other than 0."""

    def __init__(self, main: bool, bar: bool, epochs: int, steps: int):
        self.main, self.enabled, self.epochs, self.steps = main, main and bar, epochs, steps
        self.bar = None
        self.task = None
        self.current_epoch = 0

    def __enter__(self):
        if self.enabled:
            import sys

            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}  {task.fields[rate]} pairs/s"), TimeRemainingColumn(),
                                console=Console(file=sys.stderr), transient=True)
            self.bar.__enter__()
        return self

    def epoch(self, epoch: int, start: int) -> None:
        self.current_epoch = epoch
        if self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.steps, completed=start, loss="-", rate="-")

    def update(self, completed: int, loss: float | None = None, rate: float | None = None) -> None:
        if self.bar is None:
            if self.main and loss is not None and completed == self.steps:
                log.info(f"epoch {self.current_epoch + 1}/{self.epochs}: loss {loss:.4g}, {rate:.3g} pairs/s")
            return
        fields = {"loss": f"{loss:.4g}", "rate": f"{rate:.3g}"} if loss is not None else {}
        self.bar.update(self.task, completed=completed, **fields)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text)
        elif self.main:
            log.info(text)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
