"""The evaluator-convention metrics on torch tensors, computed where the tensors are (a CUDA tensor stays on its
GPU instead of being copied to the CPU first).

Each metric is `evaluator.py`'s definition, operation for operation, in the same precision: float64, except where
the numpy path uses float32 (Qabf, as the evaluator does; SSIM's window sums of grey levels, exact in float32).
Filters are separable `conv2d` passes in float64 — never TF32, which would round the window sums — and Sobel
responses are sums of shifted slices, as in `filters.py`. `tests/test_metrics_torch.py` checks this module on CPU
tensors against the numpy path within `agreement` (relative 1e-9; Qabf and VIF 1e-6, see there). torch is imported
inside the functions: `fusekit.metrics` itself never imports it.
"""

from __future__ import annotations

import math

from ..errors import FusekitError
from ..io.images import LUMA
from .evaluator import check_ssim_size, vif_too_small
from .filters import gaussian_taps

_VIF_SCALES = (17, 9, 5, 3)


def agreement(name: str) -> float:
    """The relative difference this path may have from the numpy path for metric `name` (what the tests and
    benchmarks/gpu_check.py hold it to). 1e-9 for most: both compute in float64, or in float32 where sums are exact.
    Qabf 1e-6: float32 atan and exp of two libraries differ in the last bit. VIF 1e-6: its per-pixel cases compare
    window variances with eps = 1e-10, and in flat (saturated) regions those variances are the float64 rounding
    noise of E[x²] − E[x]² (~1e-11 at 8-bit levels), so the two paths' summation orders move VIF by up to 2e-7
    (MEF Igloo; 40 DEV triples, whole and cropped, on an AVX-512 CPU)."""
    return 1e-6 if name in ("Qabf", "VIF") else 1e-9


def compute_on_device(fused, a, b, names: list[str]) -> dict[str, float]:
    """Metric name → value for one triple of tensors on one device (names already resolved, evaluator
    convention). Values are the numpy path's (see the module docstring for the tolerances)."""
    f = grey(fused, "fused")
    a = None if a is None else grey(a, "A")
    b = None if b is None else grey(b, "B")
    for role, source in (("A", a), ("B", b)):
        if source is not None and source.shape != f.shape:
            raise FusekitError(f"size mismatch: fused is {f.shape[1]}x{f.shape[0]}, {role} is {source.shape[1]}x{source.shape[0]}",
                               "metrics compare images of the same size")
    levels = all(x is not None and _grey_levels(x) for x in (a, b, f))
    return {name: float(_DEFINITIONS[name](f, a, b, levels)) for name in names}


def grey(image, role: str):
    """[H, W] float64 on the tensor's device, converted as `triple.evaluator_grey` converts (colour: OpenCV's
    float32 BGR2GRAY, rounded; uint16 rescaled to 0–255)."""
    import torch

    x = image.detach()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 3 and x.shape[0] in (1, 3):
        x = x.permute(1, 2, 0)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] != 3):
        raise FusekitError(f"{role} image has shape {tuple(image.shape)}", "pass [H, W] grey or [C, H, W] tensors")
    if x.dtype == torch.bool or x.is_complex():
        raise FusekitError(f"{role} image has {x.dtype} pixels", "pass numbers on the 0-255 scale")
    scale = 255.0 / 65535.0 if x.dtype == torch.uint16 else 1.0
    x = x.double() * scale if scale != 1.0 else x.double()
    if x.ndim == 2:
        return x
    r, g, b = (float(torch.tensor(weight, dtype=torch.float32)) for weight in LUMA)
    out = (x[..., 1] * g).float().double()
    out = (x[..., 2] * b + out).float().double()
    return (x[..., 0] * r + out).float().round().double()


def _grey_levels(x) -> bool:
    return bool(((x >= 0) & (x <= 255) & (x == x.floor())).all())


# ------------------------------------------------------------------------------------------ the definitions


def _entropy(f, a, b, levels) -> float:
    counts = f.round().clamp(0, 255).long().flatten().bincount(minlength=256).double()
    p = counts[counts > 0] / f.numel()
    return float(-(p * p.log2()).sum())


def _sd(f, a, b, levels) -> float:
    return float(f.std(correction=0))


def _sf(f, a, b, levels) -> float:
    return math.sqrt(float((f[:, 1:] - f[:, :-1]).square().mean()) + float((f[1:, :] - f[:-1, :]).square().mean()))


def _ag(f, a, b, levels) -> float:
    import torch

    gy, gx = torch.gradient(f)
    return float(((gx * gx + gy * gy) / 2.0).sqrt().mean())


def _codes(x, levels: bool):
    """Category codes and their count (`evaluator.category_codes`)."""
    import torch

    flat = x.flatten()
    if levels or (bool((flat >= 0).all()) and bool((flat <= 255).all()) and bool((flat == flat.floor()).all())):
        return flat.long(), 256
    values, codes = torch.unique(flat, return_inverse=True)
    return codes, len(values)


def _mutual_information(x, y) -> float:
    import torch

    (cx, nx), (cy, ny) = x, y
    n = cx.numel()
    if nx * ny <= 1 << 24:
        joint = (cx * ny + cy).bincount(minlength=nx * ny)
        cells = joint.nonzero().flatten()
        counts = joint[cells].double()
    else:
        cells, counts = torch.unique(cx * ny + cy, return_counts=True)
        counts = counts.double()
    px = cx.bincount(minlength=nx).double()
    py = cy.bincount(minlength=ny).double()
    terms = counts / n * (counts.log() + math.log(n) - px[cells // ny].log() - py[cells % ny].log())
    terms = terms.where(terms.abs() >= torch.finfo(torch.float64).eps, 0.0)
    return max(float(terms.sum()), 0.0)


def _mi(f, a, b, levels) -> float:
    cf = _codes(f, levels)
    return _mutual_information(cf, _codes(a, levels)) + _mutual_information(cf, _codes(b, levels))


def _mse_value(f, a, b) -> float:
    return (float((a - f).square().mean()) + float((b - f).square().mean())) / 2.0


def _mse(f, a, b, levels) -> float:
    return _mse_value(f, a, b)


def _pearson(x, y) -> float:
    dx = (x - x.mean()).flatten()
    dy = (y - y.mean()).flatten()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denominator if denominator > 0 else math.nan


def _cc(f, a, b, levels) -> float:
    return (_pearson(a, f) + _pearson(b, f)) / 2.0


def _psnr(f, a, b, levels) -> float:
    error = _mse_value(f, a, b)
    peak = float(f.max()) ** 2
    if error == 0:
        return math.inf if peak > 0 else math.nan
    return 10.0 * math.log10(peak / error) if peak > 0 else -math.inf


def _scd(f, a, b, levels) -> float:
    return _pearson(a, f - b) + _pearson(b, f - a)


def _filter_valid(x, taps, step: int = 1):
    """[N, H, W] float64 correlated with outer(taps, taps), "valid", every `step`-th row and column
    (`filters.filter_valid`)."""
    import torch
    import torch.nn.functional as F

    weight = torch.as_tensor(taps, dtype=x.dtype, device=x.device)
    y = F.conv2d(x[:, None], weight.view(1, 1, 1, -1), stride=(1, step))
    return F.conv2d(y, weight.view(1, 1, -1, 1), stride=(step, 1))[:, 0]


def _vif(f, a, b, levels) -> float:
    import torch

    eps, noise = 1e-10, 2.0
    images = torch.stack([a, b, f])
    num = torch.zeros(2, dtype=torch.float64, device=f.device)
    den = torch.zeros_like(num)
    for scale, size in enumerate(_VIF_SCALES, 1):
        taps = gaussian_taps(size, size / 5.0)
        if scale > 1:
            if min(images.shape[-2:]) < size:
                vif_too_small(*f.shape)
            images = _filter_valid(images, taps, step=2)
        if min(images.shape[-2:]) < size:
            vif_too_small(*f.shape)
        ref, dist = images[:2], images[2]
        m = _filter_valid(torch.cat([images, images * images, ref * dist]), taps)
        mu1, mu2, s1, s2, s12 = m[0:2], m[2], m[3:5], m[5], m[6:8]
        s1 = (s1 - mu1 * mu1).clamp_min(0.0)
        s2 = (s2 - mu2 * mu2).clamp_min(0.0)
        s12 = s12 - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        flat1 = s1 < eps
        dead = (g < 0) | flat1 | (s2 < eps)
        g = g.where(~dead, 0.0)
        s1 = s1.where(~flat1, 0.0)
        sv = sv.clamp_min(eps) + noise
        num += (g * g * s1 / sv).log1p().sum(dim=(-2, -1))
        den += (s1 / noise).log1p().sum(dim=(-2, -1))
    per_source = num / den
    per_source = per_source.where(~per_source.isnan(), 1.0)
    return float(per_source.sum())


def _sobel_zero(x):
    """Sx, Sy of [N, H, W] with zero padding (`filters.sobel`)."""
    import torch.nn.functional as F

    p = F.pad(x, (1, 1, 1, 1))
    down = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    across = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    return down[..., :, 2:] - down[..., :, :-2], across[..., :-2, :] - across[..., 2:, :]


def _qabf(f, a, b, levels) -> float:
    """`evaluator.qabf` in float32, as the evaluator computes it."""
    import torch

    stack = torch.stack([a, b, f])
    sx, sy = _sobel_zero(stack.float() if levels else stack)
    sx, sy = sx.float(), sy.float()
    g = (sx * sx + sy * sy).sqrt()
    angle = (sy / sx).atan().where(sx != 0, math.pi / 2)
    g_x, g_f = g[:2], g[2]
    low, high = torch.minimum(g_x, g_f), torch.maximum(g_x, g_f)
    ratio = (low / high).where(low != high, g_f.expand_as(low))
    orientation = ((angle[:2] - angle[2]).abs() * (22.0 / (math.pi / 2)) - 22.0 * 0.2).exp() + 1
    ratio = ((ratio - 0.5) * -15.0).exp() + 1
    weighted = g_x / (ratio * orientation)
    denominator = float(g_x.sum(dtype=torch.float64))
    numerator = 0.9994 * 0.9879 * float(weighted.sum(dtype=torch.float64))
    return numerator / denominator if denominator > 0 else math.nan


def _ssim(f, a, b, levels) -> float:
    """`evaluator.ssim`: window sums in float64 (exact for grey levels, hence equal to the numpy path's float32
    sums once rounded to float32), the rest in float32 on grey levels, float64 otherwise."""
    import torch

    size = 7
    check_ssim_size(*f.shape)
    images = torch.stack([a, b, f])
    m = _filter_valid(torch.cat([images, images * images, images[0:2] * images[2]]), [1.0] * size)
    if levels:
        m = m.float()
    m = m * (1.0 / (size * size))
    ux, uy, uxx, uyy, uxy = m[0:2], m[2], m[3:5], m[5], m[6:8]
    cov_norm = size * size / (size * size - 1.0)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    uxuy = ux * uy
    numerator = (2.0 * uxuy + c1) * ((uxy - uxuy) * (2.0 * cov_norm) + c2)
    denominator = (ux * ux + (uy * uy + c1)) * ((uxx - ux * ux + (uyy - uy * uy)) * cov_norm + c2)
    return float((numerator / denominator).mean(dim=(-2, -1), dtype=torch.float64).sum())


_DEFINITIONS = {
    "EN": _entropy, "SD": _sd, "SF": _sf, "AG": _ag, "MI": _mi, "MSE": _mse, "CC": _cc, "PSNR": _psnr,
    "SCD": _scd, "VIF": _vif, "Qabf": _qabf, "SSIM": _ssim,
}
