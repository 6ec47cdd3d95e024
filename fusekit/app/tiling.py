"""Tiled inference for large images: overlapping tiles, blended with linear ramps, so memory stays bounded.

A fully convolutional model (`compact`) needs memory in proportion to the pixels it sees at once: a 4000 × 3000
pair needs several GB in one piece. Here it sees `tile` × `tile` windows that overlap their neighbours by
`overlap` pixels; each window's output is weighted by a ramp that falls from 1 to 0 across the overlap (only on
sides that have a neighbour), so every pixel is a convex blend of the windows covering it and no seam shows.
Windows start on a multiple of `GRID` pixels, the model's coarsest grid (`compact` pools to 1/8), so a window's
pooled cells are the whole image's; with an overlap wider than the model's reach the blend equals the untiled
output to within float rounding (tests/test_tiling.py states the tolerance on a real DEV pair).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

GRID = 8
DEFAULT_TILE = 512  # pixels per side: ~0.3 GB of activations for `compact`
DEFAULT_OVERLAP = 96  # more than `compact`'s reach at full weight (its 1/8-grid context)
TILE_ABOVE_PIXELS = 2**21  # `fuse` tiles pairs larger than this (2 MP) for models whose spec says `tileable`


def wanted(spec, pairs) -> bool:
    """Whether `fuse` should tile these pairs: a tileable (local, grey) model and pairs above TILE_ABOVE_PIXELS."""
    return bool(getattr(spec, "tileable", False)) and pairs[0].a.ndim == 2 and pairs[0].a.size > TILE_ABOVE_PIXELS


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Window starts along one axis: every `tile − overlap` pixels (rounded down to the grid), the last window
    ending at `length` (its start rounded down to the grid too, so it may be a little longer than the others' step)."""
    if length <= tile:
        return [0]
    step = max(GRID, (tile - overlap) // GRID * GRID)
    positions = list(range(0, length - tile, step))
    last = (length - tile) // GRID * GRID
    if last > positions[-1]:
        positions.append(last)
    return positions


def _ramp(size: int, fade_start: int, fade_end: int) -> np.ndarray:
    """Weights along one axis of a window: 0 over the outer third of each overlap (where the window's own border
    still shows in its output), then a linear rise to 1 across the middle third; the neighbour's weight is the
    mirror image, so the two always sum to 1."""
    weight = np.ones(size, np.float32)
    for fade, index in ((fade_start, np.arange(size)), (fade_end, np.arange(size)[::-1])):
        if fade:
            margin = fade / 3
            weight = np.minimum(weight, np.clip((index + 0.5 - margin) / (fade - 2 * margin), 0.0, 1.0).astype(np.float32))
    return weight


def fuse_tiled(run: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray,
               tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """`run(a_window, b_window) → fused window` over overlapping windows of grey [H, W] sources, blended; `run` may
    return [C, h, w] layers instead of one [h, w] image (each blended alike)."""
    if tile % GRID or tile <= overlap:
        raise ValueError(f"tile {tile} must be a multiple of {GRID} and larger than the overlap {overlap}")
    height, width = a.shape[:2]
    rows, cols = starts(height, tile, overlap), starts(width, tile, overlap)
    total = None
    weights = np.zeros((height, width), np.float32)
    for i, top in enumerate(rows):
        bottom = height if i == len(rows) - 1 else top + tile
        for j, left in enumerate(cols):
            right = width if j == len(cols) - 1 else left + tile
            fused = np.asarray(run(a[top:bottom, left:right], b[top:bottom, left:right]), np.float32)
            # fade only where a neighbour overlaps: into the previous window's end, out over the next one's start
            fade_top = rows[i - 1] + tile - top if i else 0
            fade_bottom = bottom - rows[i + 1] if i + 1 < len(rows) else 0
            fade_left = cols[j - 1] + tile - left if j else 0
            fade_right = right - cols[j + 1] if j + 1 < len(cols) else 0
            weight = np.outer(_ramp(bottom - top, fade_top, fade_bottom), _ramp(right - left, fade_left, fade_right))
            if total is None:
                total = np.zeros(fused.shape[:-2] + (height, width), np.float32)
            total[..., top:bottom, left:right] += weight * fused
            weights[top:bottom, left:right] += weight
    total /= weights  # in place: for a large image's layers this is hundreds of MB
    return total
