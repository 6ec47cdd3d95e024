"""Training fusion models with their papers' losses: losses, augmentations, datasets, presets and the loop.

Model modules import `LOSSES` / `AUGMENTATIONS` from here to register their paper's loss and augmentation.
"""

from __future__ import annotations

from .augment import AUGMENTATIONS
from .losses import LOSSES, gradient_loss, intensity_loss, sobel_gradient, ssim, ssim_loss

__all__ = ["AUGMENTATIONS", "LOSSES", "gradient_loss", "intensity_loss", "sobel_gradient", "ssim", "ssim_loss"]
