"""Local filters shared by the training-free baselines: box mean, Gaussian blur, Laplacian, guided filter.

All work on float32 [H, W] arrays with mirrored borders (reflect-101), so a flat image stays flat at its edges.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve, gaussian_filter, uniform_filter

_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)² window around every pixel."""
    return uniform_filter(image, size=2 * radius + 1, mode="mirror")


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, truncated at 4σ."""
    return gaussian_filter(image, sigma, mode="mirror")


def laplacian(image: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian (3x3 kernel [[0,1,0],[1,-4,1],[0,1,0]])."""
    return convolve(image, _LAPLACIAN, mode="mirror")


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He, Sun & Tang's guided filter: smooth `source` while keeping the edges of `guide` (both [H, W]).

    The output is locally a linear function of the guide, q = a·I + b, fitted in every (2r+1)² window with
    regularisation `eps` (on the [0, 1] scale); that is what lets a coarse weight map snap to the image's edges.
    """
    radius = max(1, min(radius, (min(guide.shape) - 1) // 2))
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(source, radius)
    cov_ip = box_mean(guide * source, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return (box_mean(a, radius) * guide + box_mean(b, radius)).astype(np.float32)
