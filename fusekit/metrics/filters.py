"""The few linear filters the metrics need, vectorised and in float64.

The reference implementations filter with 2-D convolutions (VIF's 17×17 Gaussian alone is ~80 % of their run
time). The windows here are separable, so each 2-D filter is two 1-D passes, and each 1-D pass is a batch of small
dense matrix products (a block-banded Toeplitz matrix times blocks of the image), which BLAS runs at full speed.
Everything stays in float64: VIF and SSIM subtract second moments (E[x²] − E[x]²), where float32 would turn flat
regions into noise.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Output positions per block of the banded matrix: small blocks waste few multiplications on the band's zeros.
_BLOCK = 8


def gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """1-D taps whose outer product is MATLAB's ``fspecial('gaussian', [size size], sigma)``.

    The 2-D window ``exp(-(x² + y²) / 2σ²)`` is separable; its eps·max cut-off removes nothing for the windows used
    here (checked below), so normalising each 1-D factor to sum 1 gives the same window up to rounding.
    """
    half = (size - 1) / 2.0
    x = np.arange(-half, half + 1)
    taps = np.exp(-(x * x) / (2.0 * sigma * sigma))
    if taps[0] * taps[0] < np.finfo(np.float64).eps * taps.max() ** 2:
        raise ValueError(f"gaussian {size}x{size} sigma {sigma}: corner below eps, not separable as written")
    return taps / taps.sum()


@functools.lru_cache(maxsize=64)
def _band(taps: tuple[float, ...], step: int) -> np.ndarray:
    """[(B-1)·step + N, B] matrix: column j holds the taps starting at row j·step."""
    n = len(taps)
    band = np.zeros(((_BLOCK - 1) * step + n, _BLOCK))
    for j in range(_BLOCK):
        band[j * step:j * step + n, j] = taps
    return band


def _block_layout(length: int, taps: int, step: int) -> tuple[int, int, int, int]:
    """How a "valid" pass of `taps` taps, stride `step`, over `length` samples splits into banded-matrix blocks:
    (outputs, blocks, samples one block reads, samples all blocks read). Both axes' passes share this arithmetic."""
    out = (length - taps) // step + 1
    blocks = -(-out // _BLOCK)
    span = (_BLOCK - 1) * step + taps
    return out, blocks, span, (blocks - 1) * _BLOCK * step + span


def _zero_extend(x: np.ndarray, axis: int, need: int) -> np.ndarray:
    """`x` with zeros appended along `axis` up to `need` samples, so the last block's strided view stays inside the
    array (the outputs that read the zeros are cut off afterwards)."""
    missing = need - x.shape[axis]
    if missing <= 0:
        return x
    shape = list(x.shape)
    shape[axis] = missing
    return np.concatenate([x, np.zeros(shape, dtype=x.dtype)], axis=axis)


def _valid_last(x: np.ndarray, taps: tuple[float, ...], step: int) -> np.ndarray:
    """Correlate the last axis with `taps` ("valid"), keeping every `step`-th output."""
    out, blocks, span, need = _block_layout(x.shape[-1], len(taps), step)
    x = np.ascontiguousarray(_zero_extend(x, -1, need))
    view = as_strided(x, x.shape[:-1] + (blocks, span), x.strides[:-1] + (_BLOCK * step * x.strides[-1], x.strides[-1]),
                      writeable=False)
    return (view @ _band(taps, step).astype(x.dtype, copy=False)).reshape(x.shape[:-1] + (blocks * _BLOCK,))[..., :out]


def _valid_rows(x: np.ndarray, taps: tuple[float, ...], step: int) -> np.ndarray:
    """Correlate the second-to-last axis with `taps` ("valid"), keeping every `step`-th output row."""
    out, blocks, span, need = _block_layout(x.shape[-2], len(taps), step)
    x = np.ascontiguousarray(_zero_extend(x, -2, need))
    strides = x.strides
    view = as_strided(x, x.shape[:-2] + (blocks, span, x.shape[-1]),
                      strides[:-2] + (_BLOCK * step * strides[-2], strides[-2], strides[-1]), writeable=False)
    rows = _band(taps, step).T.astype(x.dtype, copy=False) @ view  # [..., blocks, B, W]
    return rows.reshape(x.shape[:-2] + (blocks * _BLOCK, x.shape[-1]))[..., :out, :]


def filter_valid(x: np.ndarray, taps: np.ndarray, step: int = 1) -> np.ndarray:
    """2-D correlation of [..., H, W] with ``outer(taps, taps)``, "valid" output, then every `step`-th row/column.
    float32 input stays float32 (for sums the caller knows to be exact), anything else is float64.

    Equals ``scipy.signal.convolve2d(x, outer(taps, taps), "valid")[::step, ::step]`` for symmetric taps.
    """
    key = tuple(float(t) for t in taps)
    if x.dtype != np.float32:
        x = np.asarray(x, dtype=np.float64)
    return _valid_rows(_valid_last(x, key, step), key, step)


def filter_same_zero(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Same-size 2-D correlation with ``outer(taps, taps)`` and zeros outside the image (MATLAB ``filter2``)."""
    half = len(taps) // 2
    pad = [(0, 0)] * (x.ndim - 2) + [(half, half), (half, half)]
    return filter_valid(np.pad(x, pad), taps)


def box_sum_valid(x: np.ndarray, size: int) -> np.ndarray:
    """Sums over every size×size window lying inside [..., H, W] (weights of 1.0: exact for integer images)."""
    return filter_valid(x, np.ones(size))


def sobel(x: np.ndarray, border: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """Same-size correlation of [..., H, W] with [[-1,0,1],[-2,0,2],[-1,0,1]] (Sx) and [[1,2,1],[0,0,0],[-1,-2,-1]]
    (Sy), as separable smoothing and difference passes; `border` "zero" or "replicate" padding. float32 input
    stays float32 (exact for integer grey levels), anything else is float64."""
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    x = x if x.dtype == np.float32 else np.asarray(x, dtype=np.float64)
    p = np.pad(x, pad, mode="constant" if border == "zero" else "edge")
    down = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    sx = down[..., :, 2:] - down[..., :, :-2]
    across = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    sy = across[..., :-2, :] - across[..., 2:, :]
    return sx, sy
