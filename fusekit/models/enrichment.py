"""MTIF's semantic-driven visual enrichment (papers/004 §4.2, Figure 4), the ``mtif-enrichment`` augmentation.

A saliency map of the pair picks the most salient region; the enrichment returns N = 5 crops of it: the central
crop with the highest saliency and four peripheral crops "extended outward" from it. The paper uses a learned
saliency detector (PGNet [54]); fusekit uses the weight-free spectral-residual saliency of Hou & Zhang (CVPR 2007)
so the augmentation needs no downloads. Text guidance passes through unchanged: the paper describes the source
pair once (Eq. 2), and every crop keeps the pair's text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .augment import crop


# The four peripheral directions (row step, column step) of each layout; the centre crop comes first.
PERIPHERIES = {
    "diagonal": ((-1, -1), (-1, 1), (1, -1), (1, 1)),
    "cross": ((-1, 0), (0, -1), (0, 1), (1, 0)),
}


@dataclass(frozen=True)
class EnrichmentConfig:
    """How the five crops are chosen; none of these is stated in the paper.

    crop_fraction: each crop's height and width as a fraction of the image's (0.5: the centre region and its
        four neighbours together span the salient area at twice the crop size, and every crop still holds a
        quarter of the image's pixels).
    periphery: where the four peripheral crops lie around the centre crop: "diagonal" (towards the four
        corners; with `periphery_shift` 0.5 the five crops cover the salient region's surroundings without
        gaps) or "cross" (above, below, left, right). Figure 4's drawing is not legible enough to tell.
    periphery_shift: how far each peripheral crop moves from the centre crop, as a fraction of the crop size
        (0.5: each diagonal crop overlaps the centre crop by a quarter). Crops are clamped to the image.
    saliency_size: the longer side the images are reduced to for the spectral residual (64, Hou & Zhang).
    saliency_blur: gaussian sigma (at `saliency_size`) smoothing the saliency map (3, about the 3×3 mean plus
        the σ=8-at-128-px smoothing of the original method scaled to 64 px).
    pair_saliency: how the two images' saliency maps (each scaled to a peak of 1) combine: "mean" keeps regions
        salient in either image; "max" takes the stronger.
    """

    crop_fraction: float = 0.5
    periphery: str = "diagonal"
    periphery_shift: float = 0.5
    saliency_size: int = 64
    saliency_blur: float = 3.0
    pair_saliency: str = "mean"

    def __post_init__(self):
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], not {self.crop_fraction}")
        if self.periphery not in PERIPHERIES:
            raise ValueError(f"periphery must be one of {', '.join(PERIPHERIES)}, not {self.periphery!r}")
        if self.periphery_shift < 0:
            raise ValueError(f"periphery_shift must not be negative, not {self.periphery_shift}")


def spectral_residual(image: np.ndarray, size: int = 64, blur: float = 3.0) -> np.ndarray:
    """Hou & Zhang's spectral-residual saliency of a grey [H, W] image, at full size, scaled to a peak of 1.

    A flat image has no residual to single out anything: its map is uniform."""
    height, width = image.shape
    scale = size / max(height, width)
    small_shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = resize(image, small_shape, antialias=True)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="nearest")
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = ndimage.gaussian_filter(saliency, blur, mode="nearest")
    saliency = resize(saliency, (height, width), antialias=False)
    return (saliency / saliency.max()).astype(np.float32)


def resize(array: np.ndarray, shape: tuple[int, int], antialias: bool) -> np.ndarray:
    """Bilinear resize of a 2-D array to `shape` (antialiased when shrinking)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    out = F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False, antialias=antialias)
    return out[0, 0].numpy().astype(np.float64)


def pair_saliency(a: np.ndarray, b: np.ndarray, config: EnrichmentConfig) -> np.ndarray:
    """The pair's saliency map [H, W]."""
    maps = [spectral_residual(x, config.saliency_size, config.saliency_blur) for x in (a, b)]
    if config.pair_saliency == "mean":
        return (maps[0] + maps[1]) / 2
    if config.pair_saliency == "max":
        return np.maximum(maps[0], maps[1])
    raise ValueError(f"pair_saliency must be 'mean' or 'max', not {config.pair_saliency!r}")


def crop_boxes(saliency: np.ndarray, config: EnrichmentConfig) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of the centre crop (the window of largest total saliency) and its four
    peripheral neighbours, all inside the image."""
    height, width = saliency.shape
    crop_h = max(1, round(height * config.crop_fraction))
    crop_w = max(1, round(width * config.crop_fraction))
    # Sum of saliency over every crop-sized window, from the integral image.
    integral = np.pad(saliency.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (integral[crop_h:, crop_w:] - integral[:-crop_h, crop_w:]
            - integral[crop_h:, :-crop_w] + integral[:-crop_h, :-crop_w])
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    step_h, step_w = round(crop_h * config.periphery_shift), round(crop_w * config.periphery_shift)
    boxes = []
    for row, column in ((0, 0), *PERIPHERIES[config.periphery]):
        y = min(max(int(top) + row * step_h, 0), height - crop_h)
        x = min(max(int(left) + column * step_w, 0), width - crop_w)
        boxes.append((y, x, crop_h, crop_w))
    return boxes


def enrich(sample: dict, config: EnrichmentConfig = EnrichmentConfig()) -> list[dict]:
    """The five enriched variants of a training sample (every spatial array cropped alike, guidance kept)."""
    boxes = crop_boxes(pair_saliency(sample["a"], sample["b"], config), config)
    return [crop(sample, *box) for box in boxes]


def enrichment_augmentation(sample: dict, rng: np.random.Generator) -> list[dict]:
    """MTIF's enrichment as a pipeline step; deterministic, so `rng` is unused."""
    return enrich(sample)
