"""The few linear filters the metrics need, vectorised and in float64.

The reference implementations filter with 2-D convolutions (VIF's 17×17 Gaussian alone is ~80 % of their run
time). The windows here are separable, so each 2-D filter is two 1-D passes, and each 1-D pass is a batch of small
dense matrix products (a block-banded Toeplitz matrix times blocks of the image). Passes down the columns run
as BLAS products at full speed; passes along rows (the contiguous axis, where the blocks overlap in memory) run
in numpy's own matmul loop, about three times slower, which is most of VIF's filtering time.
Everything stays in float64: VIF and SSIM subtract second moments (E[x²] − E[x]²), where float32 would turn flat
regions into noise.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Output positions per block of the banded matrix: small blocks waste few multiplications on the band's zeros;
# along rows, numpy's matmul loop does better with fewer, longer blocks (measured: 16 there, 8 down the columns).
def _block_size(axis: int) -> int:
    return 16 if axis == -1 else 8


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
def _band(taps: tuple[float, ...], step: int, dtype: str, block: int) -> np.ndarray:
    """[(B-1)·step + N, B] matrix (B = `block`): column j holds the taps starting at row j·step."""
    n = len(taps)
    band = np.zeros(((block - 1) * step + n, block), dtype=dtype)
    for j in range(block):
        band[j * step:j * step + n, j] = taps
    return band


def _along(x: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    """x[..., start:stop] (axis -1) or x[..., start:stop, :] (axis -2)."""
    return x[..., start:stop] if axis == -1 else x[..., start:stop, :]


def _times_band(samples: np.ndarray, band: np.ndarray, axis: int, out: np.ndarray) -> None:
    """Each block of samples along `axis` times the band, into `out`."""
    if axis == -1:
        np.matmul(samples, band, out=out)
    else:
        np.matmul(band.T, samples, out=out)


def _correlate_axis(x: np.ndarray, taps: tuple[float, ...], step: int, axis: int) -> np.ndarray:
    """Correlate axis -1 or -2 of `x` with `taps` ("valid"), keeping every `step`-th output.

    Output block j (B outputs) reads `span` samples from j·B·step on: a strided view holds all whole blocks, and
    one matrix product writes them straight into the result. The outputs after the last whole block come from
    one more block placed flush with the end of `x` (recomputing a few outputs costs less than copying `x` into
    a zero-padded array)."""
    n = len(taps)
    outputs = (x.shape[axis] - n) // step + 1
    block = _block_size(axis)
    band = _band(taps, step, x.dtype.str, block)
    shape = list(x.shape)
    shape[axis] = outputs
    result = np.empty(shape, dtype=x.dtype)
    whole = outputs // block
    if whole:
        _times_band(_block_view(x, axis, whole, len(band), block * step), band, axis,
                    _block_view(result, axis, whole, block, block))
    if outputs % block:
        first = max(0, outputs - block)
        count = outputs - first
        read = (count - 1) * step + n
        _times_band(_along(x, axis, first * step, first * step + read), band[:read, :count], axis,
                    _along(result, axis, first, outputs))
    return result


def _block_view(x: np.ndarray, axis: int, blocks: int, span: int, stride: int) -> np.ndarray:
    """`x` with `axis` replaced by (block, sample): block j is the `span` samples from j·stride on (overlapping
    when span > stride; writeable only when the blocks do not overlap)."""
    axis %= x.ndim
    shape = x.shape[:axis] + (blocks, span) + x.shape[axis + 1:]
    strides = x.strides[:axis] + (stride * x.strides[axis], x.strides[axis]) + x.strides[axis + 1:]
    return as_strided(x, shape, strides, writeable=span <= stride)


def filter_valid(x: np.ndarray, taps: np.ndarray, step: int = 1) -> np.ndarray:
    """2-D correlation of [..., H, W] with ``outer(taps, taps)``, "valid" output, then every `step`-th row/column.
    float32 input stays float32 (for sums the caller knows to be exact), anything else is float64.

    Equals ``scipy.signal.convolve2d(x, outer(taps, taps), "valid")[::step, ::step]`` for symmetric taps.
    """
    key = tuple(float(t) for t in taps)
    if x.dtype != np.float32:
        x = np.asarray(x, dtype=np.float64)
    return _correlate_axis(_correlate_axis(x, key, step, -1), key, step, -2)


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
    return sobel_valid(np.pad(x, pad, mode="constant" if border == "zero" else "edge"))


def sobel_valid(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sx, Sy (as in `sobel`) of the pixels of [..., H, W] whose 3x3 neighbourhood lies inside: [..., H-2, W-2]."""
    # (x + 2y) + z in this order, as before and as on_torch.py: on float images that are not grey levels, Qabf's
    # "equal strengths" test sees the rounding.
    down = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    sx = down[..., :, 2:] - down[..., :, :-2]
    across = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    sy = across[..., :-2, :] - across[..., 2:, :]
    return sx, sy
