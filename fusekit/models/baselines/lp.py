"""Laplacian-pyramid fusion (Burt & Adelson 1983; Burt & Kolczynski 1993) for IVF and MIF.

Both sources are split into band-pass levels and a low-pass residual. In each band the coefficient with the larger
local activity (window mean of |coefficient|, so one noisy pixel does not win) is kept — edges and texture come
from whichever source has them; the low-pass residual is averaged, keeping both sources' overall brightness. The
fused pyramid is collapsed back into the image. Grey (luma) in, grey out; the fuse runner re-attaches colour.
"""

from __future__ import annotations

import numpy as np

from .filters import box_mean
from .pyramid import collapse, laplacian_pyramid, max_levels

LEVELS = 4  # band-pass levels (fewer for images too small for them)
ACTIVITY_RADIUS = 1  # 3x3 window for the band selection


def pyramid_fusion(a: np.ndarray, b: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Fuse two grey float32 [H, W] images; the result is clipped to [0, 1]."""
    levels = max(1, min(levels, max_levels(a.shape) - 2))
    bands_a = laplacian_pyramid(a.astype(np.float32), levels)
    bands_b = laplacian_pyramid(b.astype(np.float32), levels)
    fused = []
    for band_a, band_b in zip(bands_a[:-1], bands_b[:-1]):
        take_a = box_mean(np.abs(band_a), ACTIVITY_RADIUS) >= box_mean(np.abs(band_b), ACTIVITY_RADIUS)
        fused.append(np.where(take_a, band_a, band_b))
    fused.append((bands_a[-1] + bands_b[-1]) / np.float32(2))
    return np.clip(collapse(fused), 0.0, 1.0)


def fuse_arrays(a: np.ndarray, b: np.ndarray, task: str) -> np.ndarray:
    """The training-free model interface (grey [H, W] in [0, 1])."""
    return pyramid_fusion(a, b)
