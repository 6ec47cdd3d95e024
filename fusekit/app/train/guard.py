"""Stop a training run at its first non-finite loss or gradient, and keep NaN out of its JSON logs.

A diverged step must not reach the optimizer: one NaN gradient makes every weight NaN, every later checkpoint
useless and `fuse` with it a black image. `check_step` runs after the backward pass and before the optimizer step,
so the newest checkpoint on disk is the last good one, and the run stops with one line that names it.
"""

from __future__ import annotations

import math
from pathlib import Path

from ...errors import FusekitError
from . import distributed, state


def check_step(loss, parameters, step: int, out: str | Path, gradients: bool = True, ctx=None) -> None:
    """Raise a `FusekitError` when the loss of `step` (or, with `gradients`, any parameter's gradient) is NaN/inf.

    `gradients` is False under fp16 loss scaling, whose grad scaler expects the odd overflow and skips that step.
    Under DDP (`ctx`) every process stops when any one finds a bad value, so none waits forever for the others.
    """
    import torch

    value = float(loss.detach())
    problem = None
    if not math.isfinite(value):
        problem = f"the training loss is {value} at step {step}; stopped"
    elif gradients:
        grads = [p.grad.detach() for p in parameters if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)).item()):
            problem = f"a gradient is NaN or infinite at step {step}; stopped"
    if ctx is not None and distributed.any_true(ctx, problem is not None) and problem is None:
        problem = f"another process's loss or gradient is not finite at step {step}; stopped"
    if problem is not None:
        raise FusekitError(problem, _resume_hint(out))


def _resume_hint(out: str | Path) -> str:
    checkpoints = state.complete_checkpoints(out)
    if not checkpoints:
        return "no checkpoint was written yet; check the data and guidance, or lower --lr / add --grad-clip"
    latest = checkpoints[-1][1]
    return (f"the last good checkpoint is {latest}: continue with --resume --out {out}, "
            f"or start a new --out with --init {latest} and a lower --lr or --grad-clip")


def loggable(value):
    """`value` with every NaN/inf float replaced by None, so each log line is valid JSON (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: loggable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [loggable(item) for item in value]
    return value
