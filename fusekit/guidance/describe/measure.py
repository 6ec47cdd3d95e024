"""Pixel measurements behind the offline `stats` describer: exposure, contrast, focus, hotspots, edges, and the
degradations found from them (`degradations`: dark, over-exposed, low-contrast, noisy, blurred).

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

# Degradation thresholds, calibrated on the DEV set (shared/data, 80 images) and its synthetic degradations
# (`fusekit.models.degrade`; tests/test_degradation_findings.py): each sits between the worst clean image and the
# mildest degraded one. Exposure and contrast are judged on the image smoothed with σ = 2 px, so noise does not
# pass for contrast or highlights.
DARK_HIGHLIGHTS = 90.0  # dark: the smoothed image's 99th percentile below this (clean DEV: ≥ 98; darkened: ≤ 85)
OVER_EXPOSED_MEAN = 195.0  # over-exposed: smoothed mean above this (clean DEV: ≤ 172; over-exposed: ≥ 205)
LOW_CONTRAST_STD = 9.0  # low contrast: smoothed standard deviation below this (clean DEV: ≥ 11; degraded: ≤ 7)
NOISE_SIGMA = 5.0  # noisy: estimated noise σ above this, grey levels (clean DEV: ≤ 4; noisy: ≥ 6)
BLUR_RATIO = 0.30  # blurred: fine-to-medium detail ratio below this (clean DEV: ≥ 0.37; blurred: ≤ 0.24)
# Which findings each source of each task gets: the kinds that can be told from that source's normal look. A
# thermal image, a scan or an MEF exposure is dark or bright by nature (exposure is what MEF is about), and
# defocus is what MFF is about.
SOURCE_FINDINGS = {
    ("ivf", "a"): ("low-contrast", "noisy", "blurred"),
    ("ivf", "b"): ("dark", "over-exposed", "low-contrast", "noisy", "blurred"),
    ("mif", "a"): ("low-contrast", "noisy", "blurred"),
    ("mif", "b"): ("low-contrast", "noisy", "blurred"),
    ("mef", "a"): ("low-contrast", "noisy", "blurred"),
    ("mef", "b"): ("low-contrast", "noisy", "blurred"),
    ("mff", "a"): ("low-contrast", "noisy"),
    ("mff", "b"): ("low-contrast", "noisy"),
}


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
    smooth_mean: float = 0.0  # mean of the image smoothed with σ = 2 px
    smooth_std: float = 0.0  # its standard deviation (contrast without noise)
    smooth_p99: float = 0.0  # its 99th percentile (highlight level without noise)
    noise: float = 0.0  # estimated noise σ in grey levels (Immerkær's filter, median-based)
    fine_detail_ratio: float = 1.0  # 99.5th pct of |x − G1(x)| over that of |G1(x) − G3(x)|: low when blurred

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


_NOISE_KERNEL = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def noise_sigma(grey: np.ndarray) -> float:
    """Noise σ (grey levels): the median absolute response of Immerkær's (1996) Laplacian-difference filter, which
    cancels smooth image structure, scaled to σ (÷ 0.6745 for the median of |N(0, 1)|, ÷ 6 for the filter's norm);
    the median ignores the edges that the mean of the original method counts."""
    from scipy import ndimage

    response = ndimage.convolve(grey, _NOISE_KERNEL, mode="reflect")
    return float(np.median(np.abs(response)) / 0.6745 / 6.0)


def fine_detail_ratio(grey: np.ndarray) -> float:
    """How much of the strongest detail is fine (σ < 1 px) rather than medium (1–3 px): blur removes the fine band
    first, whatever the image's contrast, so a low ratio means blurred."""
    from scipy import ndimage

    g1, g3 = ndimage.gaussian_filter(grey, 1.0), ndimage.gaussian_filter(grey, 3.0)
    return float(np.percentile(np.abs(grey - g1), 99.5) / max(np.percentile(np.abs(g1 - g3), 99.5), 1e-6))


def degradations(m: Measurements, task: str, role: str) -> list[str]:
    """The degradations found in one image (source `role` of `task`), in a fixed order; only the kinds that make
    sense for that source (`SOURCE_FINDINGS`). Squeezed levels are low contrast, not also dark."""
    low_contrast = m.smooth_std < LOW_CONTRAST_STD
    found = {
        "dark": m.smooth_p99 < DARK_HIGHLIGHTS and not low_contrast,
        "over-exposed": m.smooth_mean > OVER_EXPOSED_MEAN,
        "low-contrast": low_contrast,
        "noisy": m.noise > NOISE_SIGMA,
        "blurred": m.fine_detail_ratio < BLUR_RATIO and m.noise <= NOISE_SIGMA,  # noise hides the fine band
    }
    return [kind for kind in SOURCE_FINDINGS[task, role] if found[kind]]


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
    smooth = ndimage.gaussian_filter(grey, 2.0)
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
        smooth_mean=float(smooth.mean()),
        smooth_std=float(smooth.std()),
        smooth_p99=float(np.percentile(smooth, 99)),
        noise=noise_sigma(grey),
        fine_detail_ratio=fine_detail_ratio(grey),
    )
