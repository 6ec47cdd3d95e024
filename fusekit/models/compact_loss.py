"""The loss fusekit's compact model is trained with (``compact`` in `LOSSES`): FILM's loss, with every target
taken from the sources and nothing beyond them.

FILM (§5): ``L = L_int + α1·‖ |∇F| − max(|∇A|, |∇B|) ‖₁ + α2·(2 − SSIM(A, F) − SSIM(B, F))`` with the intensity
target max(A, B) for IVF/MIF and mean(A, B) for MEF/MFF and FILM's per-task α1 (`FILM_WEIGHTS`). Two weights
differ, none of the targets: the structure term (α2 = 1) is used for every task (FILM uses it for MEF and MFF
only), since it is what keeps a blend from drifting away from both sources where their gradients agree; and for
IVF and MIF the intensity term is weighted by ``INTENSITY_WEIGHT``, because with FILM's weights the gradient term
dominates a short run and the brightness selection is learnt last.

Degradation training (`fusekit.app.train.degraded`): the model sees degraded sources, and the batch carries the
clean ones as ``clean_a`` / ``clean_b``; every target is computed from those, so the model is asked for the fusion
of the clean pair and learns to undo what the text names. Without them (ordinary training, validation) the
targets come from ``a`` / ``b``.
"""

from __future__ import annotations

import torch.nn.functional as F

from .losses import FILM_WEIGHTS, as_float32, intensity_loss, sobel_gradient, ssim_loss

INTENSITY_WEIGHT = {"ivf": 5.0, "mif": 5.0, "mef": 1.0, "mff": 1.0}
STRUCTURE_WEIGHT = 1.0


def targets(batch: dict, a, b):
    """The sources the loss compares with: the clean pair when the batch has one, else the model's inputs."""
    if "clean_a" in batch:
        return batch["clean_a"].float(), batch["clean_b"].float()
    return a, b


def compact_loss(outputs: dict, batch: dict, task: str):
    """(total, parts) for `task`: weighted intensity + α1·gradient + SSIM, all against the (clean) sources."""
    fused, a, b = as_float32(outputs, batch)
    a, b = targets(batch, a, b)
    target, alpha1, _ = FILM_WEIGHTS[task]
    strongest = sobel_gradient(a).maximum(sobel_gradient(b))
    parts = {"int": intensity_loss(fused, a, b, target), "grad": F.l1_loss(sobel_gradient(fused), strongest),
             "ssim": ssim_loss(fused, a, b)}
    total = INTENSITY_WEIGHT[task] * parts["int"] + alpha1 * parts["grad"] + STRUCTURE_WEIGHT * parts["ssim"]
    return total, {name: float(value.detach()) for name, value in parts.items()}
