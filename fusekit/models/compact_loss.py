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
- for MEF the intensity target is the sources' mean weighted by Mertens's well-exposedness (each pixel of each
  exposure weighted by exp(−(x − ½)² / 2·0.2²)) instead of the plain mean: the plain mean of an over- and an
  under-exposed frame is grey where one frame is well exposed, and a model that chases it washes skies out;
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

from .losses import FILM_WEIGHTS, as_float32, intensity_loss, sobel_gradient, ssim, ssim_loss

INTENSITY_WEIGHT = {"ivf": 5.0, "mif": 5.0, "mef": 100.0, "mff": 1.0}
STRUCTURE_WEIGHT = 1.0
RESTORE_WEIGHT = 10.0
FINDINGS_WEIGHT = 1.0
WELL_EXPOSED_SIGMA = 0.2  # Mertens et al. 2007


def targets(batch: dict, a, b):
    """The sources the loss compares with: the batch's targets when it has them, else the model's inputs."""
    if "clean_a" in batch:
        return batch["clean_a"].float(), batch["clean_b"].float()
    return a, b


def well_exposed_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per pixel, the mean of A and B weighted by how well exposed each is (Mertens's Gaussian around ½)."""
    weight = lambda x: torch.exp(-((x - 0.5) ** 2) / (2 * WELL_EXPOSED_SIGMA**2)) + 1e-6  # noqa: E731
    wa, wb = weight(a), weight(b)
    return (wa * a + wb * b) / (wa + wb)


def restoration_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(restored, target) + (1 - ssim(restored, target))


def compact_loss(outputs: dict, batch: dict, task: str):
    """(total, parts) for `task`: weighted intensity + α1·gradient + SSIM against the target sources, plus the
    restoration of each source when the model reports its restored sources."""
    fused, a, b = as_float32(outputs, batch)
    a, b = targets(batch, a, b)
    target, alpha1, _ = FILM_WEIGHTS[task]
    strongest = sobel_gradient(a).maximum(sobel_gradient(b))
    intensity = (F.l1_loss(fused, well_exposed_mean(a, b)) if task == "mef"
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
