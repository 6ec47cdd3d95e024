"""Validation during training: fuse each validation pair whole and score it with `fusekit.metrics`.

The fused image is scored the way `fusekit metrics` scores a saved result (evaluator convention, 0–255 grey):
the model's output in [0, 1] is clipped, scaled to 0–255 and rounded, as `fuse` writes it. The training loss of
the pair is reported too, so over- and under-fitting show in the same log.
"""

from __future__ import annotations

import numpy as np

from ...io.images import from_float
from .dataset import Pair


def _batch_of_one(pair: Pair, crop: int | None, device):
    import torch

    from ...models import augment

    sample = pair.sample()
    if crop:
        sample = augment.centre_crop(sample, crop)
    out = {}
    for key, value in sample.items():
        if key in ("a", "b", "mask"):
            out[key] = torch.from_numpy(np.ascontiguousarray(value))[None, None]
        elif key in ("a_rgb", "b_rgb"):
            out[key] = torch.from_numpy(np.ascontiguousarray(value.transpose(2, 0, 1)))[None]
        else:
            out[key] = torch.from_numpy(np.asarray(value, dtype=np.float32))[None]
    return {key: value.to(device) for key, value in out.items()}


def model_outputs(model, a, b, guidance: dict) -> dict:
    """The model's `training_outputs` (auxiliary images a loss may need) or ``{"fused": model(a, b, ...)}``."""
    if hasattr(model, "training_outputs"):
        return model.training_outputs(a, b, **guidance)
    return {"fused": model(a, b, **guidance)}


def validate(model, pairs: list[Pair], task: str, loss_fn, guidance_names: list[str], device,
             metrics: list[str] | None, crop: int | None = None, autocast=None, should_stop=lambda: False) -> dict | None:
    """Mean metrics and loss over `pairs` ({"metrics": {...}, "loss": float, "pairs": n}); None when stopped early."""
    import contextlib

    import torch

    from ...metrics import compute

    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    loss_sum = 0.0
    try:
        for pair in pairs:
            if should_stop():
                return None
            batch = _batch_of_one(pair, crop, device)
            guidance = {name: batch[name] for name in guidance_names}
            with torch.no_grad(), (autocast() if autocast else contextlib.nullcontext()):
                outputs = model_outputs(model, batch["a"], batch["b"], guidance)
                loss, _ = loss_fn(outputs, batch, task)
            fused = outputs["fused"].float()
            loss_sum += float(loss)
            # Scored as fuse would save them: 8-bit grey levels (the metrics' 0–255 scale).
            fused255, a255, b255 = (from_float(x[0, 0].cpu().numpy(), 8).astype(np.float32)
                                    for x in (fused, batch["a"], batch["b"]))
            for name, value in compute(fused255, a255, b255, metrics=metrics, convention="evaluator").items():
                sums[name] = sums.get(name, 0.0) + float(value)
    finally:
        model.train(was_training)
    n = max(len(pairs), 1)
    return {"metrics": {name: total / n for name, total in sums.items()}, "loss": loss_sum / n, "pairs": len(pairs)}

