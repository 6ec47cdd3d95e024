"""Weights for learned fusion models: fusekit checkpoints, released `.pth` files and bundled weights.

Three kinds of file load into a registered model:

- fusekit checkpoints (safetensors, kind ``checkpoint``): fusekit's parameter names plus metadata naming the model,
  its config, the task and the features it expects (docs/FORMATS.md);
- released PyTorch checkpoints (``.pth``: ``{'model': state_dict}`` or a bare state dict, usually with the
  ``module.`` prefix of ``nn.DataParallel``), read with ``weights_only=True`` so no pickled code runs;
- a bare state dict in safetensors (no fusekit metadata), e.g. released weights converted by someone else.

Names of a released layout are mapped onto fusekit's by the function the model registered with
`register_released_layout`. Every problem is one user error naming the file and the first offending key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from .. import __version__, log
from ..errors import FusekitError
from ..io.formats import check_schema, parse_safetensors, read_bytes, sha256_file
from ..registry import resolved
from .registry import FUSION_MODELS, FusionModelSpec

# model name → function mapping a released parameter name (without `module.`) to fusekit's name.
RELEASED_LAYOUTS: dict[str, Callable[[str], str]] = {}

_IMPORT_HINT = "convert it with 'fusekit models import FILE --model M --task T -o OUT.safetensors' or use the model it was made for"


def register_released_layout(model: str, rename: Callable[[str], str]) -> None:
    """Declare how the parameter names of `model`'s released checkpoints map to fusekit's."""
    RELEASED_LAYOUTS[model] = rename


def learned_spec(name: str) -> FusionModelSpec:
    spec = FUSION_MODELS.get(name)
    if spec.kind != "learned":
        raise FusekitError(f"model {name!r} is training-free and has no weights", "drop --weights")
    return spec


def build_model(spec: FusionModelSpec, config=None):
    """`spec.build(config)`, with the paper's defaults when `config` is None."""
    return spec.build(config if config is not None else spec.config())


def config_from_metadata(spec: FusionModelSpec, text: str | None, source: str):
    """The config dataclass stored as JSON in a checkpoint's metadata (defaults for missing fields)."""
    if not text:
        return spec.config()
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FusekitError(f"{source}: its 'config' metadata is not JSON", "the checkpoint is damaged; re-save it") from exc
    known = {f.name for f in dataclasses.fields(spec.config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FusekitError(f"{source}: config field {unknown[0]!r} is unknown to model {spec.name!r}", "upgrade fusekit or use the fusekit version that wrote it")
    return spec.config(**values)


def read_weights(path: str | os.PathLike, spec: FusionModelSpec) -> tuple[dict, dict]:
    """(state dict with fusekit names, metadata) of a checkpoint file of any supported kind."""
    source = str(path)
    data = read_bytes(path, "weights file")
    if data[:4] == b"PK\x03\x04" or data[:2] == b"\x80\x02":
        tensors, metadata = _read_torch(data, source), {}
    else:
        tensors, metadata = _read_safetensors(data, source)
    if metadata:
        stored = metadata.get("model")
        if stored and stored != spec.name:
            raise FusekitError(f"{source} holds weights of model {stored!r}, not {spec.name!r}", f"use --model {stored}")
        return tensors, metadata
    return _to_fusekit_names(tensors, spec, source), {}


def _read_torch(data: bytes, source: str) -> dict:
    import io
    import pickle

    import torch

    if data[:4] == b"PK\x03\x04":
        try:
            damaged_member = zipfile.ZipFile(io.BytesIO(data)).testzip()
        except Exception as exc:  # zipfile raises BadZipFile, EOFError, OSError, UnicodeDecodeError, ... on damage
            raise FusekitError(f"{source} is truncated or damaged", "download or copy the checkpoint again") from exc
        if damaged_member is not None:
            raise FusekitError(f"{source} is damaged ({damaged_member} fails its checksum)", "download or copy the checkpoint again")
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise FusekitError(f"{source} holds more than weights (refused to unpickle code)", "save just the state dict with torch.save({'model': model.state_dict()})") from exc
    except Exception as exc:  # a damaged archive surfaces as any of a dozen exception types inside torch.load
        raise FusekitError(f"{source} is truncated or not a PyTorch checkpoint", "download or copy the checkpoint again") from exc
    state = loaded
    if isinstance(loaded, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(loaded.get(key), dict):
                state = loaded[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FusekitError(f"{source} holds no state dict", "expected torch.save({'model': state_dict}) or a bare state dict")
    return dict(state)


def _read_safetensors(data: bytes, source: str) -> tuple[dict, dict]:
    """A safetensors checkpoint: fusekit's (schema checked, with metadata) or a bare one (no metadata)."""
    damaged = FusekitError(f"{source} is not a checkpoint (neither safetensors nor PyTorch) or is truncated", "download or copy the checkpoint again")
    tensors, metadata = parse_safetensors(data, damaged)
    if "schema" in metadata:
        check_schema(metadata["schema"], "checkpoint", source)
        return tensors, metadata
    return tensors, {}


def _to_fusekit_names(state: dict, spec: FusionModelSpec, source: str) -> dict:
    """Drop `module.` prefixes and map a released layout's names (when the model registered one)."""
    stripped = {(key[len("module."):] if key.startswith("module.") else key): value for key, value in state.items()}
    resolved(spec.build)  # the model's module registers its released layout when it is imported
    rename = RELEASED_LAYOUTS.get(spec.name)
    if rename is None:
        return stripped
    renamed = {rename(key): value for key, value in stripped.items()}
    if len(renamed) != len(stripped):
        raise FusekitError(f"{source}: two parameters map to the same name", "the checkpoint is not a released one of this model")
    return renamed


def check_state(state: dict, module, source: str, model: str) -> None:
    """One user error for the first missing, extra or wrongly shaped key; silence when everything matches."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    if missing:
        raise FusekitError(f"{source}: missing parameter {missing[0]!r} of model {model!r} ({len(missing)} missing)", "the file holds another model's weights or is incomplete")
    extra = [key for key in state if key not in expected]
    if extra:
        raise FusekitError(f"{source}: unexpected parameter {extra[0]!r} for model {model!r} ({len(extra)} extra)", "the file holds another model's weights; check --model")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise FusekitError(
                f"{source}: parameter {key!r} has shape {list(state[key].shape)}, model {model!r} needs {list(tensor.shape)}",
                "the weights were made for another configuration of the model",
            )
    check_finite_weights(state, source)


def check_finite_weights(state: dict, source: str) -> None:
    """Refuse weights holding NaN or inf (e.g. saved by a run whose loss diverged): they fuse to a black image."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise FusekitError(f"{source}: parameter {key!r} holds NaN or infinite values",
                               "the run that wrote it diverged; use an earlier checkpoint or train again (e.g. lower --lr)")


def default_metadata(spec: FusionModelSpec, task: str | None) -> dict:
    """What a checkpoint without metadata is taken to expect: the spec's defaults."""
    metadata = {"model": spec.name, "task": task or ""}
    for key in ("text_encoder", "text_dim", "image_encoder", "image_dim"):
        value = getattr(spec, key)
        if value is not None:
            metadata[key] = str(value)
    return metadata


def load_model(name: str, weights: str | os.PathLike | None, task: str | None, device="cpu", dtype=None):
    """(module in eval mode on `device`/`dtype`, metadata) for a learned model; bundled weights when no path.

    Metadata is the checkpoint's (strings, as stored) completed with the spec's expected features.
    """
    import torch

    spec = learned_spec(name)
    if task is not None and task not in spec.tasks:
        raise FusekitError(f"model {name!r} does not serve task {task!r}", f"it serves {', '.join(spec.tasks)}")
    if weights is None:
        weights = spec.bundled_weights(task) if task else None
        if weights is None:
            raise FusekitError(f"model {name!r} has no bundled weights for task {task!r}", "give --weights FILE (from fusekit train or fusekit models import)")
    source = str(weights)
    state, metadata = read_weights(weights, spec)
    config = config_from_metadata(spec, metadata.get("config"), source)
    module = build_model(spec, config)
    check_state(state, module, source, name)
    module.load_state_dict(state, strict=True)
    stored_task = metadata.get("task")
    if task and stored_task and stored_task != task:
        log.warn(f"{source} was trained for task {stored_task!r}; running it on {task!r}")
    full = default_metadata(spec, task or stored_task)
    full.update(metadata)
    module = module.to(device=device, dtype=dtype or torch.float32).eval()
    return module, full


def save_checkpoint(path: str | os.PathLike, model_name: str, module, config, task: str, **metadata) -> None:
    """Write `module`'s weights as a fusekit checkpoint (atomically) with the contract's metadata.

    `config` is the model's config dataclass (None = defaults); extra keyword metadata (loss, step, epoch,
    train_command, train_data, data_manifest_sha256, source, ...) is stored as given (non-strings as JSON).
    """
    from ..io.formats import write_safetensors

    spec = learned_spec(model_name)
    config = config if config is not None else spec.config()
    meta = default_metadata(spec, task)
    meta["config"] = json.dumps(dataclasses.asdict(config), sort_keys=True)
    meta.update({key: value for key, value in metadata.items() if value is not None})
    meta["fusekit_version"] = __version__
    state = {key: tensor.detach().float() if tensor.is_floating_point() else tensor.detach() for key, tensor in module.state_dict().items()}
    write_safetensors(path, "checkpoint", state, meta)


def import_checkpoint(source: str | os.PathLike, model_name: str, task: str, output: str | os.PathLike) -> dict:
    """Convert a released checkpoint into a fusekit one; returns the metadata written."""
    from ..io.atomic import check_not_input

    check_not_input(output, [source])
    module, _ = load_model(model_name, source, task)
    metadata = {"source": Path(str(source)).name, "source_sha256": sha256_file(source)}
    save_checkpoint(output, model_name, module, getattr(module, "config", None), task, **metadata)
    return metadata
