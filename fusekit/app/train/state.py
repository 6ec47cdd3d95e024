"""Checkpoints of a training run: weights usable by `fuse`, plus the optimizer state `--resume` needs.

Each checkpoint is two files in ``<out>/checkpoints/``: ``step-NNNNNNNN.state.pt`` (optimizer, grad scaler, RNG,
position in the run; plain tensors and numbers, loaded with ``weights_only=True``) written first, then
``step-NNNNNNNN.safetensors`` (a fusekit checkpoint: the model's weights and the contract's metadata). Both are
written atomically and the weights file is written last, so a checkpoint counts only once its weights file
exists: a run killed at any moment leaves the previous checkpoint intact and no partial file under a final name.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ...errors import FusekitError
from ...io.atomic import write_bytes

FOLDER = "checkpoints"
_NAME = re.compile(r"step-(\d{8})\.safetensors$")


def paths_for(out_dir: str | Path, step: int) -> tuple[Path, Path]:
    folder = Path(out_dir) / FOLDER
    return folder / f"step-{step:08d}.safetensors", folder / f"step-{step:08d}.state.pt"


def complete_checkpoints(out_dir: str | Path) -> list[tuple[int, Path, Path]]:
    """(step, weights, state) of every complete checkpoint, oldest first."""
    folder = Path(out_dir) / FOLDER
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match:
                step = int(match.group(1))
                weights, state = paths_for(out_dir, step)
                if state.is_file():
                    found.append((step, weights, state))
    return sorted(found)


def write_state(path: Path, state: dict) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def read_state(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise FusekitError(f"cannot read training state {path} ({exc})", "resume from an earlier checkpoint or start a new --out") from exc


def prune(out_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` complete checkpoints (weights and state)."""
    if keep <= 0:
        return
    for _, weights, state in complete_checkpoints(out_dir)[:-keep]:
        weights.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
