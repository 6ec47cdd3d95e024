"""The loss fusekit's compact model is trained with (``compact`` in `LOSSES`): FILM's loss, with every target
taken from the sources and nothing beyond them, plus a restoration term for the text-gated correction.

FILM (§5): ``L = L_int + α1·‖ |∇F| − max(|∇A|, |∇B|) ‖₁ + α2·(2 − SSIM(A, F) − SSIM(B, F))`` with the intensity
target max(A, B) for IVF/MIF and FILM's per-task α1 (`FILM_WEIGHTS`). Differences, none of them a target beyond
the sources:

- the structure term (α2 = 1) is used for every task (FILM uses it for MEF and MFF only), since it is what keeps
  a blend from drifting away from both sources where their gradients agree;
- the intensity term is weighted by ``INTENSITY_WEIGHT``, because with FILM's weights the gradient term dominates
  a short run and the brightness selection is learnt last: ×5 for IVF and MIF, ×100 for MEF, whose α1 = 500 made
  the gradient term ~90 % of the loss and brightness (what MEF is about) 0.5 % of it — the earlier weights,
  trained at ×1, washed skies out;
- MEF's gradient weight α1 is 50 (``GRADIENT_WEIGHT``; FILM's is 500): at 500 the term held the blend weights
  nearly still, since where two exposures differ by half the range every change of weight is an edge, and the
  brightness never followed its target (its L1 stayed at ~0.17 through a whole run; at 50, with
  `CompactConfig.pyramid_blend`, it falls to ~0.06 on the degraded training crops);
- for MEF the intensity target is the Mertens exposure fusion of the sources (`pyramid_blend`, computed on
  each crop) instead of the plain mean: the plain mean of an over- and an under-exposed frame is grey where one
  frame is well exposed, and a model that chases it washes skies out; a per-pixel well-exposedness-weighted mean
  (the earlier weights' target) switches frame pixel by pixel, with dark rings around lamps and edges the scene
  does not have, and the gradient term fighting those left the fusion hazy;
- restoration (``RESTORE_WEIGHT``): each source as the model corrected it (``restored_a`` / ``restored_b``) is
  compared with the source it should have become, L1 + (1 − SSIM). That is the clean source when the text named
  the degradation and the input itself when it did not (`fusekit.app.train.degraded`), so the correction learns
  to do what the text says and nothing when it says nothing (with `CompactConfig.restorers_taught_by_fusion`
  false, as in the bundled weights, it is all the restorers learn from: the fusion terms stop at their outputs);
- findings (``FINDINGS_WEIGHT``): the kinds of degradation the model read from the text for each source
  (``findings`` [B, 2, kinds], logits) against the kinds the text names (the batch's ``findings``,
  `fusekit.app.train.degraded.named_kinds`), binary cross-entropy: the text reader learns to find "the visible image
  is noisy" among hundreds of tokens in a few hundred steps instead of through the images.

Degradation training: the model sees degraded sources and the batch carries the targets as ``clean_a`` /
``clean_b``; without them (ordinary training, validation) the targets come from ``a`` / ``b``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pyramid_blend import exposure_fusion
from .losses import FILM_WEIGHTS, as_float32, intensity_loss, sobel_gradient, ssim, ssim_loss

INTENSITY_WEIGHT = {"ivf": 5.0, "mif": 5.0, "mef": 100.0, "mff": 1.0}
GRADIENT_WEIGHT = {task: alpha1 for task, (_, alpha1, _) in FILM_WEIGHTS.items()} | {"mef": 50.0}  # α1
STRUCTURE_WEIGHT = 1.0
RESTORE_WEIGHT = 10.0
FINDINGS_WEIGHT = 1.0


def targets(batch: dict, a, b):
    """The sources the loss compares with: the batch's targets when it has them, else the model's inputs."""
    if "clean_a" in batch:
        return batch["clean_a"].float(), batch["clean_b"].float()
    return a, b


def restoration_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(restored, target) + (1 - ssim(restored, target))


def compact_loss(outputs: dict, batch: dict, task: str):
    """(total, parts) for `task`: weighted intensity + α1·gradient + SSIM against the target sources, plus the
    restoration of each source when the model reports its restored sources."""
    fused, a, b = as_float32(outputs, batch)
    a, b = targets(batch, a, b)
    target, _, _ = FILM_WEIGHTS[task]
    alpha1 = GRADIENT_WEIGHT[task]
    strongest = sobel_gradient(a).maximum(sobel_gradient(b))
    intensity = (F.l1_loss(fused, exposure_fusion(a, b).clamp(0.0, 1.0)) if task == "mef"
                 else intensity_loss(fused, a, b, target))
    parts = {"int": intensity, "grad": F.l1_loss(sobel_gradient(fused), strongest), "ssim": ssim_loss(fused, a, b)}
    total = INTENSITY_WEIGHT[task] * parts["int"] + alpha1 * parts["grad"] + STRUCTURE_WEIGHT * parts["ssim"]
    if "restored_a" in outputs:
        parts["restore"] = (restoration_loss(outputs["restored_a"].float(), a)
                            + restoration_loss(outputs["restored_b"].float(), b))
        total = total + RESTORE_WEIGHT * parts["restore"]
    if "findings" in batch and "findings" in outputs:
        parts["findings"] = F.binary_cross_entropy_with_logits(outputs["findings"].float(), batch["findings"].float())
        total = total + FINDINGS_WEIGHT * parts["findings"]
    return total, {name: float(value.detach()) for name, value in parts.items()}
