"""Pixel measurements behind the offline `stats` describer: exposure, contrast, focus, hotspots, edges.

Kept apart from the wording (`stats.py`) so the numbers can be tested on their own and reused as the
"measured statistics" part of an LLM prompt. Everything works on the grey image on the 0–255 scale (16-bit
images are scaled down), so thresholds mean the same for every input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# A 3 × 3 grid of named regions: positions in the text are these names.
ROW_NAMES = ("top", "middle", "bottom")
COL_NAMES = ("left", "centre", "right")
DARK_CLIP = 3.0  # grey level at or below which a pixel counts as crushed to black
BRIGHT_CLIP = 252.0  # at or above: saturated
WELL_EXPOSED = (25.0, 230.0)  # grey levels where a photograph keeps usable detail
EDGE_THRESHOLD = 24.0  # (|Sobel x| + |Sobel y|) / 4 above this (a step of 24 grey levels) is an edge pixel


def region_name(row: int, col: int) -> str:
    """"upper left", "centre", "lower right", ... for a cell of the 3 × 3 grid."""
    vertical = ("upper", "", "lower")[row]
    horizontal = ("left", "", "right")[col]
    if row == 1 and col == 1:
        return "centre"
    if not vertical:
        return f"centre {horizontal}"
    if not horizontal:
        return f"{('top', '', 'bottom')[row]} centre"
    return f"{vertical} {horizontal}"


def position_of(x: float, y: float, width: int, height: int) -> str:
    """Name of the grid cell holding the point (x, y)."""
    col = min(2, int(3 * x / max(width, 1)))
    row = min(2, int(3 * y / max(height, 1)))
    return region_name(row, col)


@dataclass
class Hotspot:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, x1/y1 exclusive)
    area_fraction: float
    mean_level: float
    position: str


@dataclass
class Measurements:
    width: int
    height: int
    colour: bool
    saturation: float  # mean HSV-style saturation in [0, 1]; 0 for grey images
    mean: float  # mean grey level, 0–255
    std: float  # global contrast (standard deviation)
    p1: float
    p99: float
    dark_clipped: float  # fraction of pixels <= DARK_CLIP
    bright_clipped: float  # fraction >= BRIGHT_CLIP
    cell_mean: np.ndarray  # [3, 3] mean level per region
    cell_focus: np.ndarray  # [3, 3] mean squared Laplacian per region (focus measure)
    cell_edges: np.ndarray  # [3, 3] edge-pixel fraction per region
    cell_well_exposed: np.ndarray  # [3, 3] fraction of pixels between WELL_EXPOSED levels per region
    edge_density: float
    horizontal_share: float  # share of gradient energy in vertical derivatives (horizontal edges)
    hotspots: list[Hotspot] = field(default_factory=list)
    dark_fraction: float = 0.0  # fraction below 50: near-black content (background, shadows)

    @property
    def focus(self) -> float:
        return float(self.cell_focus.mean())


def grey_255(image: np.ndarray) -> np.ndarray:
    """float64 grey on the 0–255 scale (BT.601, like the rest of fusekit)."""
    from ...io.images import to_grey

    grey = to_grey(image, rounded=False).astype(np.float64)
    if image.dtype == np.uint16:
        grey = grey / 257.0
    return grey


def _saturation(image: np.ndarray) -> float:
    if image.ndim != 3:
        return 0.0
    rgb = image.astype(np.float64)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    sat = np.where(high > 0, (high - low) / np.maximum(high, 1e-9), 0.0)
    return float(sat.mean())


def _cells(array: np.ndarray, reduce) -> np.ndarray:
    """`reduce` over each cell of a 3×3 grid; images under 3 pixels a side share pixels so no cell is empty."""
    height, width = array.shape

    def bounds(size: int, index: int) -> slice:
        edges = np.linspace(0, size, 4).astype(int)
        start = min(int(edges[index]), size - 1)
        return slice(start, max(int(edges[index + 1]), start + 1))

    out = np.zeros((3, 3))
    for r in range(3):
        for c in range(3):
            out[r, c] = reduce(array[bounds(height, r), bounds(width, c)])
    return out


def _hotspots(grey: np.ndarray, limit: int = 3) -> list[Hotspot]:
    """Connected regions clearly brighter than the scene: above mean + 2σ and mean + 40, ≥ 0.05 % of the image.

    In an infrared image these are warm objects (people, engines, lamps); in PET/SPECT, high uptake.
    """
    from scipy import ndimage

    mean, std = grey.mean(), grey.std()
    threshold = min(max(mean + 2.0 * std, mean + 40.0), 250.0)
    mask = grey > threshold
    if not mask.any():
        return []
    mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
    labels, count = ndimage.label(mask)
    if count == 0:
        return []
    total = grey.size
    areas = ndimage.sum_labels(np.ones_like(grey), labels, index=np.arange(1, count + 1))
    order = sorted(range(count), key=lambda i: (-areas[i], i))
    spots = []
    boxes = ndimage.find_objects(labels)
    for index in order[:limit]:
        if areas[index] / total < 0.0005:
            break
        rows, cols = boxes[index]
        region = labels[rows, cols] == index + 1
        level = float(grey[rows, cols][region].mean())
        cy, cx = ndimage.center_of_mass(labels == index + 1)
        spots.append(Hotspot(
            box=(int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)),
            area_fraction=float(areas[index] / total),
            mean_level=level,
            position=position_of(cx, cy, grey.shape[1], grey.shape[0]),
        ))
    return spots


def measure(image: np.ndarray) -> Measurements:
    """All measurements of one image (uint8/uint16, grey or RGB)."""
    from scipy import ndimage

    grey = grey_255(image)
    height, width = grey.shape
    gx = ndimage.sobel(grey, axis=1, mode="nearest")
    gy = ndimage.sobel(grey, axis=0, mode="nearest")
    # Sobel in scipy is unnormalised (weights sum to 4 per side); /4 puts it on the grey scale of a unit step.
    magnitude = (np.abs(gx) + np.abs(gy)) / 4.0
    edges = magnitude > EDGE_THRESHOLD
    laplacian = ndimage.laplace(grey, mode="nearest")
    energy_x, energy_y = float((gx ** 2).sum()), float((gy ** 2).sum())
    return Measurements(
        width=width,
        height=height,
        colour=image.ndim == 3 and _saturation(image) > 0.02,
        saturation=_saturation(image),
        mean=float(grey.mean()),
        std=float(grey.std()),
        p1=float(np.percentile(grey, 1)),
        p99=float(np.percentile(grey, 99)),
        dark_clipped=float((grey <= DARK_CLIP).mean()),
        bright_clipped=float((grey >= BRIGHT_CLIP).mean()),
        cell_mean=_cells(grey, np.mean),
        cell_focus=_cells(laplacian ** 2, np.mean),
        cell_edges=_cells(edges.astype(np.float64), np.mean),
        cell_well_exposed=_cells(((grey >= WELL_EXPOSED[0]) & (grey <= WELL_EXPOSED[1])).astype(np.float64), np.mean),
        edge_density=float(edges.mean()),
        horizontal_share=energy_y / (energy_x + energy_y) if energy_x + energy_y > 0 else 0.5,
        hotspots=_hotspots(grey),
        dark_fraction=float((grey < 50).mean()),
    )
