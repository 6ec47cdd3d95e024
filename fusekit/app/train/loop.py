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
from ...io.formats import dump_json
from ...io.pairfiles import FileHashes
from . import distributed, guard, resume, state
from ...guidance.kinds import tensor_names
from ...models.augment import AUGMENTATIONS
from . import degraded  # noqa: F401  (registers the degrade-<task> augmentations)
from ..guidance import GuidanceOptions, train_guidance, warn_if_not_paper
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
    return dataclasses.replace(base, **{name: _config_value(spec, name, getattr(base, name), value) for name, value in overrides.items()})


def _config_value(spec, name: str, default, value):
    """`value` for config field `name` in the shape of its default: a list where the default is a tuple (of the
    same length), a single value where it is one; anything else is a usage error naming the field."""
    if isinstance(default, tuple):
        if not isinstance(value, list) or (default and len(value) != len(default)):
            example = ",".join(str(item) for item in default)
            raise UsageError(f"model {spec.name!r}: config field {name!r} takes {len(default)} values, not {value!r}",
                             f"give a JSON list, e.g. --set {name}=[{example}]")
        return tuple(value)
    if default is not None and not isinstance(default, str) and isinstance(value, (list, dict)):
        raise UsageError(f"model {spec.name!r}: config field {name!r} takes one value, not {value!r}", f"e.g. --set {name}={default}")
    return value


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
    resume.refuse_changes(settings, given, RESUMABLE_CHANGES)
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
    """The run's stages in order: resolve settings, data, model + state, the step loop, saving."""
    run = _Run(settings, ctx, stop, torch)
    run.resolve()
    if not run.load_data():
        log.info("stopped before the first step; nothing to save")
        return stop.exit_code
    run.build_model()
    run.start_files()
    run.step_loop()
    return run.finish()


class _Run:
    """One training run's state, built stage by stage (each stage a method, run in order by `_run`)."""

    def __init__(self, settings: Settings, ctx, stop: StopRequest, torch):
        self.settings, self.ctx, self.stop, self.torch = settings, ctx, stop, torch
        self.step = self.epoch = self.batch_in_epoch = 0
        self.stopped = False

    # ---- resolve settings

    def resolve(self) -> None:
        """Model, task, output folder, preset, loss, device: everything decided before any data is read."""
        from ...devices import resolve_precision
        from ...models import FUSION_MODELS

        s, ctx = self.settings, self.ctx
        self.spec = spec = FUSION_MODELS.get(s.model)
        self.task = s.task
        if spec.kind != "learned":
            raise FusekitError(f"model {spec.name!r} is training-free; there is nothing to train", "pick a learned model (fusekit models)")
        if self.task not in spec.tasks:
            raise FusekitError(f"model {spec.name!r} does not serve task {self.task!r}", f"it serves {', '.join(spec.tasks)}")
        self.out = Path(s.out)
        self.existing = state.complete_checkpoints(self.out)
        if self.existing and not s.resume:
            raise FusekitError(f"{self.out} already holds a training run", "continue it with --resume or choose another --out")
        if s.resume and not self.existing:
            raise FusekitError(f"{self.out} has no complete checkpoint to resume from", "start the run again without --resume")
        self.resume_from = self.existing[-1] if s.resume else None
        self.preset = self._preset()
        self.loss_name = LOSSES.canonical(s.loss or spec.default_loss or "film")
        self.loss_fn = LOSSES.get(self.loss_name)
        if self.preset.batch_size % ctx.world:
            raise UsageError(f"batch size {self.preset.batch_size} is not divisible by the {ctx.world} processes", "the batch size is global: use a multiple of the process count")
        self.per_rank = self.preset.batch_size // ctx.world
        self.config = None if s.resume else resolve_model_config(spec, s.config)
        self.device = ctx.device
        self.dtype = resolve_precision(s.precision, self.device)
        _seed_everything(s.seed, s.deterministic, self.device, self.torch)

    def _preset(self):
        s, spec = self.settings, self.spec
        preset = PRESETS.get(s.preset or spec.train_preset or "default").with_overrides(
            epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, optimizer=s.optimizer,
            weight_decay=s.weight_decay, schedule=s.schedule, grad_clip=s.grad_clip,
            augment=tuple(s.augment) if s.augment is not None else None,
        )
        if s.crop is not None:
            preset = dataclasses.replace(preset, crop=s.crop or None)
        if s.resize is not None:
            preset = dataclasses.replace(preset, resize=None if s.resize == "none" else s.resize)
        self.paper_augment = spec.train_augment.format(task=self.task) if s.paper_augment and spec.train_augment else None
        for name in preset.augment + ((self.paper_augment,) if self.paper_augment else ()):
            AUGMENTATIONS.canonical(name)
        return preset

    # ---- data

    def load_data(self) -> bool:
        """Training (and validation) pairs decoded with their guidance; False when stopped meanwhile."""
        from .dataset import Pipeline, load_pairs

        s, ctx, task = self.settings, self.ctx, self.task
        s.guidance.task = task
        self.hashes = FileHashes()
        self.guidance = train_guidance(self.spec, s.guidance, task, str(self.device), s.precision, self.hashes)
        self.items = self._items(s.data, s.split, "skipping", required=True)
        if len(self.items) < self.preset.batch_size:
            raise FusekitError(f"only {len(self.items)} training pairs for a batch of {self.preset.batch_size}", "lower --batch-size")
        val_items = self._items(s.val, "test", "skipping validation pair", required=False) if s.val else []
        keep_rgb = bool(getattr(self.loss_fn, "needs_rgb", False))
        if ctx.distributed and not ctx.is_main:
            distributed.barrier(ctx)  # rank 0 computes and caches on-the-fly guidance first
        self.pairs = load_pairs(self.items, keep_rgb, self.guidance)
        self.val_pairs = load_pairs(val_items, keep_rgb, self.guidance, "loading validation pairs") if val_items and ctx.is_main else []
        self.val_count = len(val_items)
        if ctx.distributed and ctx.is_main:
            distributed.barrier(ctx)
        if ctx.is_main:
            warn_if_not_paper(self.spec, self.guidance.info)
        if self.stop.signal is not None:
            return False
        self.pipeline = Pipeline(resize=self.preset.resize, paper_augment=self.paper_augment, crop=self.preset.crop, extra=self.preset.augment)
        if self.per_rank > 1 and not self.pipeline.fixed_shape() and len({p.shape for p in self.pairs}) > 1:
            raise UsageError("training pairs differ in size and batches need one size", "use --crop N, --resize film or --batch-size 1")
        self.manifest_text = "".join(json.dumps({"name": i.name, "a": i.a, "b": i.b, "sha256_a": self.hashes(i.a), "sha256_b": self.hashes(i.b)},
                                                sort_keys=True) + "\n" for i in self.items)
        self.data_sha = hashlib.sha256(self.manifest_text.encode()).hexdigest()
        return True

    def _items(self, root: str, split: str, skipping: str, required: bool) -> list:
        """The usable pairs under `root` (each unusable one warned about), checked to have guidance."""
        selection = find_pairs(root, self.task, split)
        for name, reason in selection.problems:
            log.warn(f"{skipping} {name}: {reason}")
        if required and not selection.items:
            raise FusekitError(f"no usable training pairs in {root}", "see the warnings above")
        self.guidance.check_available(selection.items)
        return selection.items

    # ---- model and state

    def build_model(self) -> None:
        """The model (fresh, --init, or the checkpoint resumed), its optimizer and the resumed counters."""
        torch = self.torch
        self.model = self._initial_model().to(self.device)
        optimizer_cls = torch.optim.AdamW if self.preset.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer_cls(self.model.parameters(), lr=self.preset.lr, weight_decay=self.preset.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        if self.resume_from is not None:
            self._restore_state()
        self.train_module = _training_forward_module(self.model)
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device = self.device
            self.train_module = DistributedDataParallel(self.train_module, device_ids=[device.index] if device.type == "cuda" else None)
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=self.dtype)) if self.dtype != torch.float32 else None

    def _initial_model(self):
        from ...models.checkpoints import check_state, config_from_metadata, read_weights

        s, spec = self.settings, self.spec
        if self.resume_from is not None:
            weights, stored = read_weights(self.resume_from[1], spec)
            self.resumed_metadata = stored
            self.config = config_from_metadata(spec, stored.get("config"), str(self.resume_from[1]))
        check_feature_widths(self.config, self.guidance.info)
        model = spec.build(self.config)
        if self.resume_from is not None:
            check_state(weights, model, str(self.resume_from[1]), spec.name)
            model.load_state_dict(weights)
        elif s.init:
            init_state, init_meta = read_weights(s.init, spec)
            if init_meta.get("config") and not s.config:
                self.config = config_from_metadata(spec, init_meta["config"], s.init)
                model = spec.build(self.config)
            check_state(init_state, model, s.init, spec.name)
            model.load_state_dict(init_state)
        return model

    def _restore_state(self) -> None:
        saved = state.read_state(self.resume_from[2])
        if saved.get("data_sha256") != self.data_sha:
            raise FusekitError(f"the training data changed since {self.resume_from[1].name} was written", "resume with the same data or start a new --out")
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.torch.set_rng_state(saved["torch_rng"])
        self.step, self.epoch, self.batch_in_epoch = int(saved["step"]), int(saved["epoch"]), int(saved["batch_in_epoch"])
        log.info(f"resuming from {self.resume_from[1]} (step {self.step}, epoch {self.epoch + 1})")

    def start_files(self) -> None:
        """run.json and data.jsonl, and the metadata every checkpoint of the run carries (including the guidance
        recipe, so `fuse` computes the same guidance when no file is given)."""
        s = self.settings
        self.run = _RunFiles(self.out, self.ctx)
        info = dataclasses.asdict(self.guidance.info)
        record = {
            "settings": _settings_record(s), "preset": dataclasses.asdict(self.preset), "loss": self.loss_name,
            "model_config": dataclasses.asdict(self.config), "data_sha256": self.data_sha, "pairs": len(self.pairs),
            "val_pairs": self.val_count, "world_size": self.ctx.world, "fusekit_version": __version__,
            "guidance": info,
        }
        self.run.start(record, self.manifest_text, resumed=self.resume_from is not None)
        self.meta = {
            "loss": self.loss_name, "train_command": s.command, "train_data": str(s.data),
            "data_manifest_sha256": self.data_sha, "preset": json.dumps(dataclasses.asdict(self.preset), sort_keys=True),
        }
        self.meta.update({key: str(value) for key, value in info.items() if value is not None})
        self.meta.update(self.guidance.recipe_used().metadata())
        if self.resume_from is not None:
            self.meta["history"] = resume.history(self.resumed_metadata, self.step, s, self.out, RESUMABLE_CHANGES)

    # ---- the step loop

    def step_loop(self) -> None:
        """Epochs of optimizer steps, validating and checkpointing between them, until done, --max-steps or a stop."""
        from torch.utils.data import DistributedSampler

        from .dataset import PairDataset

        s, ctx = self.settings, self.ctx
        self.dataset = PairDataset(self.pairs, self.pipeline, s.seed)
        self.sampler = DistributedSampler(self.dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=s.seed, drop_last=False)
        self.batches_per_epoch = len(self.sampler) // self.per_rank
        self.guidance_names = tensor_names(self.spec.guidance)
        if ctx.is_main:
            log.info(f"training {self.spec.name} for {self.task} on {len(self.pairs)} pairs ({self.items[0].name}, …), "
                     f"{self.preset.epochs} epoch{'' if self.preset.epochs == 1 else 's'} × {self.batches_per_epoch} step{'' if self.batches_per_epoch == 1 else 's'}, batch {self.preset.batch_size}, {ctx.world} process(es) on {self.device}")
        self.progress = _Progress(ctx.is_main, log.progress_enabled(), self.preset.epochs, self.batches_per_epoch)
        self.model.train()
        self.last_saved_step = self.step if self.resume_from is not None else -1
        with self.progress:
            if self.val_pairs and ctx.is_main and self.resume_from is None:
                self._validate(0)
            distributed.barrier(ctx)
            while self.epoch < self.preset.epochs and not self.stopped and not self._at_max_steps():
                if self._epoch():
                    break

    def _at_max_steps(self) -> bool:
        return bool(self.settings.max_steps and self.step >= self.settings.max_steps)

    def _epoch(self) -> bool:
        """One epoch (or the rest of one, when resumed), then validation and a checkpoint; True: stop the run."""
        from torch.utils.data import DataLoader

        from .dataset import collate

        s, ctx, preset = self.settings, self.ctx, self.preset
        lr = preset.lr * schedule_factor(preset.schedule, self.epoch, preset.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        loader = DataLoader(self.dataset, batch_size=self.per_rank, sampler=SkipSampler(self.sampler, self.batch_in_epoch * self.per_rank),
                            collate_fn=collate, num_workers=s.workers, drop_last=True, persistent_workers=False)
        self.progress.epoch(self.epoch, self.batch_in_epoch)
        tick, seen = time.perf_counter(), 0
        for batch in loader:
            loss, parts = self._step(batch)
            seen += batch["a"].shape[0] * ctx.world
            self._log_step(loss, parts, lr, seen / max(time.perf_counter() - tick, 1e-9))
            if distributed.any_true(ctx, self.stop.signal is not None):
                self.stopped = True
            elif s.checkpoint_every and self.step % s.checkpoint_every == 0:
                self.save(self.epoch, self.batch_in_epoch)
            if self.stopped or self._at_max_steps():
                break
        if self.stopped or (self._at_max_steps() and self.batch_in_epoch < self.batches_per_epoch):
            return True
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        if self.val_pairs and ctx.is_main and (self.epoch % s.val_every == 0 or self.epoch == preset.epochs):
            self._validate(self.epoch)
        distributed.barrier(ctx)
        self.stopped = self.stopped or distributed.any_true(ctx, self.stop.signal is not None)
        if self.step != self.last_saved_step:
            self.save(self.epoch, 0)
        return self._at_max_steps()

    def _step(self, batch: dict):
        """One optimizer step on a batch → (loss tensor, its named parts)."""
        torch, scaler, optimizer = self.torch, self.scaler, self.optimizer
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        guidance = {name: batch[name] for name in self.guidance_names}
        # what the model reads of the whole image and a crop cannot see (the degrade-<task> augmentation's levels)
        guidance.update({name: batch[name] for name in getattr(self.model, "whole_image_names", ()) if name in batch})
        with self.autocast() if self.autocast else contextlib.nullcontext():
            outputs = self.train_module(batch["a"], batch["b"], guidance)
        loss, parts = self.loss_fn(outputs, batch, self.task)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if self.preset.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.preset.grad_clip)
        guard.check_step(loss, self.model.parameters(), self.step + 1, self.out, gradients=scaler is None, ctx=self.ctx)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        self.step += 1
        self.batch_in_epoch += 1
        return loss, parts

    def _log_step(self, loss, parts: dict, lr: float, rate: float) -> None:
        if self.step % self.settings.log_every == 0 or self.batch_in_epoch == self.batches_per_epoch:
            names = sorted(parts)
            values = distributed.mean(self.ctx, [float(loss.detach())] + [parts[n] for n in names])
            self.run.log({"kind": "train", "step": self.step, "epoch": self.epoch + 1, "loss": values[0],
                          "parts": dict(zip(names, values[1:])), "lr": lr, "pairs_per_s": rate})
            self.progress.update(self.batch_in_epoch, values[0], rate)
        else:
            self.progress.update(self.batch_in_epoch)

    def _validate(self, epoch: int) -> None:
        _validate_and_log(self.run, self.progress, self.model, self.val_pairs, self.task, self.loss_fn, self.guidance_names,
                          self.device, self.settings, self.autocast, self.stop, self.step, epoch)

    # ---- saving

    def save(self, at_epoch: int, at_batch: int) -> Path:
        """A resumable checkpoint of the current step (rank 0 writes; every rank waits)."""
        from ...models.checkpoints import save_checkpoint

        weights_path, state_path = state.paths_for(self.out, self.step)
        if self.ctx.is_main:
            state.write_state(state_path, {
                "step": self.step, "epoch": at_epoch, "batch_in_epoch": at_batch, "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None, "torch_rng": self.torch.get_rng_state(),
                "data_sha256": self.data_sha,
            })
            save_checkpoint(weights_path, self.spec.name, self.model, self.config, self.task, step=str(self.step), epoch=str(at_epoch), **self.meta)
            state.prune(self.out, self.settings.keep)
        distributed.barrier(self.ctx)
        self.last_saved_step = self.step
        return weights_path

    def finish(self) -> int:
        """The last checkpoint, and model.safetensors when the run completed; the exit code."""
        if self.step != self.last_saved_step:
            self.save(self.epoch, self.batch_in_epoch)
        latest = state.paths_for(self.out, self.step)[0]
        if self.stopped:
            log.info(f"interrupted at step {self.step}; checkpoint {latest} (continue with --resume --out {self.out})")
            return self.stop.exit_code
        if self.ctx.is_main:
            final = self.out / "model.safetensors"
            _copy_atomically(latest, final)
            log.info(f"done: {self.step} steps; weights {final} (use: fusekit fuse --model {self.spec.name} --weights {final})")
        distributed.barrier(self.ctx)
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
        row = guard.loggable({"time": round(time.time(), 3), **row})
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
