"""Laplacian-pyramid blending of grey batches in torch, and Mertens exposure fusion built on it: how MEF's compact
model combines its exposures, and the brightness it is taught to reach.

Why a pyramid: a per-pixel blend w·A + (1 − w)·B switches from one exposure to the other at the scale of w, so
where one frame is blown out and the other black (around a lamp) it leaves a dark ring, and a smooth w leaves a
grey, hazy image. Mertens, Kautz & Van Reeth (2007) blend band by band, each band with the weights smoothed to its
own scale: a sky comes from the frame that kept its clouds, a lamp keeps a glow rather than a ring. The blend is
global (its coarsest band spans the image) but the weights are local, so a network that predicts the weights
(`CompactConfig.pyramid_blend`) can learn them from crops and blend a whole image as Mertens does.

The arithmetic is `fusekit.models.baselines.pyramid`'s (OpenCV's pyramids, reflect-101 borders, the depth
⌊log2 min(H, W)⌋) on [B, C, H, W] tensors; `exposure_fusion` is `fusekit.models.baselines.mertens` for grey sources
(contrast × well-exposedness), checked against it in tests/test_pyramid_blend.py. As the training target it is
computed on each crop, the same global blend the model then applies to that crop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_BINOMIAL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
_WEIGHT_FLOOR = 1e-12
_EXPOSEDNESS_DENOMINATOR = 0.08  # 2·σ², σ = 0.2 (Mertens et al.)


def _mirror(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """`x` padded by `pad` samples at both ends of `dim`, reflect-101 (scipy's "mirror"), for any length ≥ 1."""
    n = x.shape[dim]
    index = torch.arange(-pad, n + pad, device=x.device).abs()
    if n > 1:
        period = 2 * (n - 1)
        index = index % period
        index = torch.where(index >= n, period - index, index)
    else:
        index = torch.zeros_like(index)
    return x.index_select(dim, index)


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    """cv2.pyrDown: 5-tap binomial blur (reflect-101) along both axes, every second row and column kept."""
    channels = x.shape[1]
    taps = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device).repeat(channels, 1)
    x = F.conv2d(_mirror(x, 2, 2), taps.view(channels, 1, 5, 1), groups=channels)
    x = F.conv2d(_mirror(x, 2, 3), taps.view(channels, 1, 1, 5), groups=channels)
    return x[..., ::2, ::2]


def _up_axis(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """cv2.pyrUp along `dim` to `size` samples: even outputs (s[i-1] + 6 s[i] + s[i+1]) / 8, odd (s[i] + s[i+1]) / 2,
    with s[-1] = s[1] and s[n] = s[n + 1] = s[n - 1]."""
    n = x.shape[dim]
    first = x.narrow(dim, 1 if n > 1 else 0, 1)
    last = x.narrow(dim, n - 1, 1)
    padded = torch.cat([first, x, last, last], dim=dim)
    length = padded.shape[dim]
    before, centre, after = (padded.narrow(dim, start, length - 2) for start in (0, 1, 2))
    even = ((before + 6 * centre + after) / 8).narrow(dim, 0, (size + 1) // 2)
    odd = ((centre + after) / 2).narrow(dim, 0, size // 2)
    if size % 2:  # one more even than odd sample: interleave with a padding odd one, then drop it
        odd = torch.cat([odd, torch.zeros_like(even.narrow(dim, 0, 1))], dim=dim)
    out = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return out.narrow(dim, 0, size)


def _pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return _up_axis(_up_axis(x, size[0], 2), size[1], 3)


def _weights(x: torch.Tensor) -> torch.Tensor:
    """Mertens's grey weight: |Laplacian| (3x3, reflect-101) × exp(−(x − ½)² / 2σ²), floored."""
    p = _mirror(_mirror(x, 1, 2), 1, 3)
    laplacian = p[..., :-2, 1:-1] + p[..., 1:-1, :-2] - 4 * p[..., 1:-1, 1:-1] + p[..., 1:-1, 2:] + p[..., 2:, 1:-1]
    return laplacian.abs() * torch.exp(-((x - 0.5) ** 2) / _EXPOSEDNESS_DENOMINATOR) + _WEIGHT_FLOOR


def pyramid_blend(a: torch.Tensor, b: torch.Tensor, weight_a: torch.Tensor) -> torch.Tensor:
    """A and B [B, 1, H, W] blended band by band, at full depth: each band of their Laplacian pyramids weighted by
    the Gaussian pyramid of `weight_a` (B's weight is 1 − weight_a; the pyramid of a constant is that constant, so a
    constant weight is the plain per-pixel blend)."""
    levels = int(math.log(float(min(a.shape[-2:]))) / math.log(2.0))
    images, weight = torch.cat([a, b], dim=1), weight_a
    blended = []
    for _ in range(levels):
        smaller = _pyr_down(images)
        band = images - _pyr_up(smaller, images.shape[-2:])
        blended.append(weight * band[:, :1] + (1 - weight) * band[:, 1:])
        images, weight = smaller, _pyr_down(weight)
    fused = weight * images[:, :1] + (1 - weight) * images[:, 1:]
    for band in reversed(blended):
        fused = band + _pyr_up(fused, band.shape[-2:])
    return fused


def exposure_fusion(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mertens exposure fusion of two grey exposures [B, 1, H, W] in [0, 1] → [B, 1, H, W] (not clipped)."""
    weight_a, weight_b = _weights(a), _weights(b)
    return pyramid_blend(a, b, weight_a / (weight_a + weight_b))
