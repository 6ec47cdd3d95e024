"""`--device` and `--precision`, resolved once for every command that runs a model."""

from __future__ import annotations

import re

from .errors import FusekitError, UsageError

PRECISIONS = ("fp32", "bf16", "fp16")


def check_device(spec: str | None) -> str:
    """The normalised spelling of a `--device` value; a usage error for one no machine has (e.g. ``tpu``).

    Checked by every command, also those whose model runs no tensors, so a typo never passes silently."""
    spec = (spec or "auto").strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(?::\d+)?", spec):
        raise UsageError(f"unknown device {spec!r}", "use auto, cpu, cuda or cuda:N")
    return spec


def resolve_device(spec: str = "auto"):
    """auto → the first CUDA device when available, else the CPU; cpu; cuda; cuda:N."""
    import torch

    spec = check_device(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not torch.cuda.is_available():
        raise FusekitError(f"device {spec!r} asked for but CUDA is not available", "use --device cpu or auto")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise FusekitError(
            f"device {spec!r} does not exist", f"this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return torch.device("cuda", index)


def resolve_precision(precision: str, device) -> "torch.dtype":  # noqa: F821
    """fp32 everywhere; bf16 on CPU and CUDA; fp16 on CUDA only (CPU half kernels are slow and incomplete)."""
    import torch

    precision = (precision or "fp32").lower()
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise FusekitError("fp16 needs a CUDA device", "use --precision bf16 or fp32 on the CPU")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
