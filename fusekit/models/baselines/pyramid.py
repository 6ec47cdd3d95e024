"""Gaussian and Laplacian pyramids with OpenCV's exact arithmetic (`cv2.pyrDown` / `cv2.pyrUp`).

The classic pyramid methods (Mertens exposure fusion, Laplacian-pyramid fusion) are defined on these pyramids, and
users compare against OpenCV's implementations, so the borders follow OpenCV too: `pyr_down` filters with the
5-tap binomial kernel and mirrored borders (reflect-101) before dropping every second row and column; `pyr_up`
interpolates with the same kernel (×2 per axis), mirroring at the start and repeating the last sample at the end,
as `cv2.pyrUp` does. Arrays are float32 [H, W] or [H, W, C]; filtering runs along the first two axes.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

_BINOMIAL = np.array([1, 4, 6, 4, 1], dtype=np.float32) / np.float32(16)


def pyr_down(image: np.ndarray) -> np.ndarray:
    """Blur with the 5x5 binomial kernel (reflect-101 borders) and keep even rows and columns: ⌈H/2⌉ × ⌈W/2⌉."""
    blurred = correlate1d(image, _BINOMIAL, axis=0, mode="mirror")
    blurred = correlate1d(blurred, _BINOMIAL, axis=1, mode="mirror")
    return np.ascontiguousarray(blurred[::2, ::2])


def _up_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Upsample along `axis` to `size` samples: even outputs (s[i-1] + 6 s[i] + s[i+1]) / 8, odd (s[i] + s[i+1]) / 2."""
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    padded = np.concatenate([x[1:2] if n > 1 else x[:1], x, x[-1:], x[-1:]], axis=0)  # s[-1] = s[1], s[n] = s[n-1]
    out = np.empty((size,) + x.shape[1:], dtype=np.float32)
    even = (padded[:-2] + 6 * padded[1:-1] + padded[2:]) / np.float32(8)  # centred on s[0..n]
    odd = (padded[1:-1] + padded[2:]) / np.float32(2)
    out[0::2] = even[: (size + 1) // 2]
    out[1::2] = odd[: size // 2]
    return np.moveaxis(out, 0, axis)


def pyr_up(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upsample to `shape` (H, W), each within one of twice the input size, as `cv2.pyrUp(image, dstsize=...)`."""
    return _up_axis(_up_axis(image, shape[0], 0), shape[1], 1)


def gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """`levels + 1` images, the first the input itself (as `cv2.buildPyramid(image, levels)`)."""
    pyramid = [image.astype(np.float32)]
    for _ in range(levels):
        pyramid.append(pyr_down(pyramid[-1]))
    return pyramid


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass levels (each Gaussian level minus the next one upsampled) and the coarsest Gaussian level last."""
    gaussian = gaussian_pyramid(image, levels)
    bands = [fine - pyr_up(coarse, fine.shape[:2]) for fine, coarse in zip(gaussian[:-1], gaussian[1:])]
    return bands + [gaussian[-1]]


def collapse(pyramid: list[np.ndarray]) -> np.ndarray:
    """Invert `laplacian_pyramid`: upsample from the coarsest level and add each band."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + pyr_up(image, band.shape[:2])
    return image


def max_levels(shape: tuple[int, ...]) -> int:
    """The depth OpenCV's exposure fusion uses: ⌊log2(min(H, W))⌋ (coarsest level is a pixel or two)."""
    return int(np.log(float(min(shape[:2]))) / np.log(2.0))


def blend(images: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """The images' Laplacian pyramids blended with the Gaussian pyramids of their per-pixel weights (which sum to
    one), at full depth, and collapsed: Mertens's exposure fusion, and `compact`'s band-by-band blend of a large
    image (`fusekit.models.compact.CompactFusion.blend_layers_array`). [H, W] weights; images [H, W] or [H, W, C]."""
    levels = max_levels(images[0].shape)
    blended = None
    for image, weight in zip(images, weights):
        bands = laplacian_pyramid(image, levels)
        weight_pyramid = gaussian_pyramid(weight, levels)
        terms = [band * (w[..., None] if band.ndim == 3 else w) for band, w in zip(bands, weight_pyramid)]
        blended = terms if blended is None else [acc + term for acc, term in zip(blended, terms)]
    return collapse(blended)
