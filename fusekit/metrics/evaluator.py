"""The "evaluator" convention: the CDDFuse/FILM Python evaluator (`utils/Evaluator.py`), as
`reference/METRICS.md` specifies it. FILM, TGIF and MTIF report these numbers.

Values match the reference to a relative 1e-4 or better (the reference works partly in float32). This module works
in float64, and in float32 only where the evaluator itself does (Qabf) or where it is exact (SSIM's window sums of
grey levels, integers 0..255). Work shared by several metrics (centred images, differences, grey-level
codes, the float32 [A, B, F] stack) is memoised on the `Triple`. VIF, SSIM and Qabf work through the image in
strips of `_STRIP_ROWS` output rows, so that their per-pixel temporaries stay in the CPU cache.
"""

from __future__ import annotations

import math

import numpy as np

from .filters import box_sum_valid, filter_valid, gaussian_taps, sobel_valid
from .registry import define
from .triple import Triple

E = "evaluator"
# Per-pixel work runs on strips of this many rows, whose temporaries stay in the CPU cache.
_STRIP_ROWS = 64


# ------------------------------------------------------------------------------------------ shared pieces


def entropy_bits(image: np.ndarray, rounding) -> float:
    """−Σ p log2 p of the 256-level histogram of `rounding(image)` (clipped to 0..255)."""
    levels = np.clip(rounding(image), 0, 255).astype(np.int64).ravel()
    p = np.bincount(levels, minlength=256) / levels.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def centred(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(x − mean x, flattened; its squared norm): what Pearson r needs of one image."""
    d = np.ravel(x) - x.mean()
    return d, float(np.dot(d, d))


def pearson(x: tuple[np.ndarray, float], y: tuple[np.ndarray, float]) -> float:
    """Pearson r of two `centred` images; NaN when either is constant (0/0), as in the reference."""
    (dx, nx), (dy, ny) = x, y
    denominator = math.sqrt(nx * ny)
    return float(np.dot(dx, dy)) / denominator if denominator > 0 else math.nan


def centred_image(t: Triple, role: str) -> tuple[np.ndarray, float]:
    """`centred` of A, B or F, computed once for CC, SCD and SD."""
    return t.cached("centred-" + role, lambda: centred(getattr(t, role)))


def category_codes(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Each distinct value → a category index (the categories of scikit-learn's ``mutual_info_score``)."""
    flat = image.ravel()
    if flat.min() >= 0 and flat.max() <= 255 and np.array_equal(flat, np.floor(flat)):
        return flat.astype(np.int64), 256
    values, codes = np.unique(flat, return_inverse=True)
    return codes.astype(np.int64), len(values)


def mutual_information(x: tuple[np.ndarray, int], y: tuple[np.ndarray, int]) -> float:
    """MI in nats of two category-coded images (empty categories are harmless: they contribute nothing)."""
    (cx, nx), (cy, ny) = x, y
    n = cx.size
    if nx * ny <= 1 << 24:
        joint = np.bincount(cx * ny + cy, minlength=nx * ny)
        cells = np.flatnonzero(joint)
        counts = joint[cells].astype(np.float64)
        table = joint.reshape(nx, ny)  # the marginals from the table: cheaper than two more passes over the pixels
        px, py = table.sum(axis=1).astype(np.float64), table.sum(axis=0).astype(np.float64)
    else:
        cells, counts = np.unique(cx * ny + cy, return_counts=True)
        counts = counts.astype(np.float64)
        px = np.bincount(cx, minlength=nx).astype(np.float64)
        py = np.bincount(cy, minlength=ny).astype(np.float64)
    terms = counts / n * (np.log(counts) + math.log(n) - np.log(px[cells // ny]) - np.log(py[cells % ny]))
    terms[np.abs(terms) < np.finfo(np.float64).eps] = 0.0
    return max(float(terms.sum()), 0.0)


def level_codes(t: Triple, role: str) -> np.ndarray:
    """The grey levels of A, B or F as histogram bin indices (only when `grey_levels`), shared by MI and EN."""
    return t.cached("codes-" + role, lambda: getattr(t, role).ravel().astype(np.intp))


def grey_stack(t: Triple) -> np.ndarray:
    """[A, B, F] in float32, exact for grey levels (only when `grey_levels`); Qabf and SSIM start from it."""
    def make() -> np.ndarray:
        stack = np.empty((3, *t.f.shape), dtype=np.float32)
        stack[0], stack[1], stack[2] = t.a, t.b, t.f
        return stack

    return t.cached("grey-stack", make)


def grey_levels(t: Triple) -> bool:
    """Whether all three images hold integers 0..255 (then window sums of products stay below 2^24 and float32
    sums are exact)."""
    def check() -> bool:
        with np.errstate(invalid="ignore"):  # out-of-range values cast to garbage, which then differs
            return all(x is not None and np.array_equal(x, x.astype(np.uint8)) for x in (t.a, t.b, t.f))

    return t.cached("grey-levels", check)


def qabf(t: Triple, equal_scale: float = 1.0, dtype=np.float64) -> float:
    """Xydeas–Petrović Q^AB/F. Where gX == gF the strength ratio is `equal_scale`·gF (sic, in both references;
    VIFB works on 255-scaled images, hence its `equal_scale` of 255). `dtype`: the evaluator works in float32
    (which also decides which strengths count as equal), VIFB in float64.

    The references convolve with the Sobel kernels (flipped); correlating flips the sign of both Sx and Sy, which
    changes neither the strength nor atan(Sy/Sx). Every step is per pixel once the Sobel responses are known, so
    the image is worked through in strips of rows whose temporaries stay in cache.
    """
    # Sobel responses of grey levels are small integers, exact in float32.
    stack = grey_stack(t) if grey_levels(t) else np.stack([t.a, t.b, t.f])
    padded = np.pad(stack, ((0, 0), (1, 1), (1, 1)))
    numerator = denominator = 0.0
    for top in range(0, stack.shape[-2], _STRIP_ROWS):
        sx, sy = sobel_valid(padded[:, top:top + _STRIP_ROWS + 2])
        strip_numerator, strip_denominator = qabf_sums(sx.astype(dtype, copy=False), sy.astype(dtype, copy=False),
                                                       equal_scale, dtype)
        numerator += strip_numerator
        denominator += strip_denominator
    return 0.9994 * 0.9879 * numerator / denominator if denominator > 0 else math.nan


def qabf_sums(sx: np.ndarray, sy: np.ndarray, equal_scale: float, dtype) -> tuple[float, float]:
    """(Σ gX·Qg·Qa / (0.9994·0.9879), Σ gX) over both sources, from the Sobel responses of [A, B, F]."""
    g = np.sqrt(sx * sx + sy * sy)
    # Whole-array division and np.where rather than masked ufuncs (where=, copyto): about twice as fast.
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.where(sx == 0, dtype(math.pi / 2), np.arctan(sy / sx))
        g_x, g_f = g[:2], g[2]
        low, high = np.minimum(g_x, g_f), np.maximum(g_x, g_f)
        ratio = np.where(low == high, dtype(equal_scale) * g_f, low / high)
    # Qg·Qa with Qg = 0.9994 / (1 + e^(−15(G − 0.5))) and Qa = 0.9879 / (1 + e^(−22(A − 0.8))),
    # A = 1 − |αX − αF| / (π/2), so −22(A − 0.8) = 22·|αX − αF|/(π/2) − 4.4.
    orientation = np.abs(angle[:2] - angle[2])
    orientation *= dtype(22.0 / (math.pi / 2))
    orientation -= dtype(22.0 * 0.2)
    np.exp(orientation, out=orientation)
    orientation += 1
    ratio -= dtype(0.5)
    ratio *= dtype(-15.0)
    np.exp(ratio, out=ratio)
    ratio += 1
    ratio *= orientation
    np.divide(g_x, ratio, out=ratio)
    return float(ratio.sum(dtype=np.float64)), float(g_x.sum(dtype=np.float64))


# ------------------------------------------------------------------------------------------ no-reference


@define("EN", E, "entropy of round(F) over 256 levels, log2", (0.0, 8.0))
def en(t: Triple) -> float:
    if grey_levels(t):
        p = np.bincount(level_codes(t, "f"), minlength=256) / t.f.size
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())
    return entropy_bits(t.f, np.round)


@define("SD", E, "population standard deviation of F", (0.0, 127.5))
def sd(t: Triple) -> float:
    return math.sqrt(centred_image(t, "f")[1] / t.f.size)


@define("SF", E, "sqrt(mean row diff² + mean column diff²)")
def sf(t: Triple) -> float:
    across, down = np.diff(t.f, axis=1).ravel(), np.diff(t.f, axis=0).ravel()
    return math.sqrt(float(np.dot(across, across)) / across.size + float(np.dot(down, down)) / down.size)


def matlab_gradient_magnitude(f: np.ndarray) -> np.ndarray:
    """sqrt((gx² + gy²)/2) with central differences inside and one-sided ones at the borders (``np.gradient``,
    written out: its generic code costs several times the arithmetic)."""
    half = f.dtype.type(0.5)
    gx, gy = np.empty_like(f), np.empty_like(f)
    for g, axis in ((gx, 1), (gy, 0)):
        inner = np.subtract(_shifted(f, axis, 2, None), _shifted(f, axis, 0, -2), out=_shifted(g, axis, 1, -1))
        inner *= half
        np.subtract(_shifted(f, axis, 1, 2), _shifted(f, axis, 0, 1), out=_shifted(g, axis, 0, 1))
        np.subtract(_shifted(f, axis, -1, None), _shifted(f, axis, -2, -1), out=_shifted(g, axis, -1, None))
    gx *= gx
    gy *= gy
    gx += gy
    gx *= half
    return np.sqrt(gx, out=gx)


def _shifted(x: np.ndarray, axis: int, start, stop) -> np.ndarray:
    """x[start:stop] along `axis` (0 or 1) of a 2-D array."""
    return x[start:stop] if axis == 0 else x[:, start:stop]


@define("AG", E, "mean of sqrt((Gx² + Gy²)/2), central differences")
def ag(t: Triple) -> float:
    return float(matlab_gradient_magnitude(t.f).mean())


# ------------------------------------------------------------------------------------------ with sources


@define("MI", E, "MI(F,A) + MI(F,B), every distinct value a category, nats")
def mi(t: Triple) -> float:
    if grey_levels(t):  # the levels themselves are the categories
        codes = {role: (level_codes(t, role), 256) for role in "fab"}
    else:
        codes = {role: category_codes(getattr(t, role)) for role in "fab"}
    return mutual_information(codes["f"], codes["a"]) + mutual_information(codes["f"], codes["b"])


def difference(t: Triple, role: str) -> np.ndarray:
    """F − A or F − B, flattened, computed once for MSE and SCD."""
    return t.cached("difference-" + role, lambda: np.ravel(t.f - getattr(t, role)))


def _mse(t: Triple) -> float:
    def mean_square(d: np.ndarray) -> float:
        return float(np.dot(d, d)) / d.size

    return t.cached("mse", lambda: (mean_square(difference(t, "a")) + mean_square(difference(t, "b"))) / 2.0)


@define("MSE", E, "(mean (A-F)² + mean (B-F)²) / 2")
def mse(t: Triple) -> float:
    return _mse(t)


@define("CC", E, "(r(A,F) + r(B,F)) / 2, Pearson r", (-1.0, 1.0))
def cc(t: Triple) -> float:
    f = centred_image(t, "f")
    return (pearson(centred_image(t, "a"), f) + pearson(centred_image(t, "b"), f)) / 2.0


@define("PSNR", E, "10 log10(max(F)² / MSE)", (-math.inf, math.inf))
def psnr(t: Triple) -> float:
    error = _mse(t)
    peak = float(t.f.max()) ** 2
    if error == 0:  # identical images: infinite (reported as missing by the CLI)
        return math.inf if peak > 0 else math.nan
    return 10.0 * math.log10(peak / error) if peak > 0 else -math.inf


@define("SCD", E, "r(A, F-B) + r(B, F-A); undefined when a difference image is constant", (-2.0, 2.0))
def scd(t: Triple) -> float:
    # The differences are centred themselves (not as differences of centred images): a constant F - B must
    # come out exactly constant, so that r is NaN as in the reference.
    a, b = centred_image(t, "a"), centred_image(t, "b")
    return pearson(a, centred(difference(t, "b"))) + pearson(b, centred(difference(t, "a")))


_VIF_SCALES = tuple((2 ** (4 - s + 1) + 1) for s in range(1, 5))  # window sizes 17, 9, 5, 3
_VIF_EPS, _VIF_NOISE = 1e-10, 2.0


@define("VIF", E, "pixel-domain VIF (VIFF), 4 scales, σn²=2, VIF(A,F) + VIF(B,F)")
def vif(t: Triple) -> float:
    """Both sources at once: each scale filters the stack [A, B, F, A², B², F², AF, BF]. It does so in strips of
    output rows, from building the stack to the per-pixel sums, so that the strip's arrays stay in cache (the
    few rows a strip's windows share with the next are multiplied twice, which costs less)."""
    images = np.stack([t.a, t.b, t.f])
    num, den = np.zeros(2), np.zeros(2)
    for scale, size in enumerate(_VIF_SCALES, 1):
        taps = gaussian_taps(size, size / 5.0)
        if scale > 1:
            if min(images.shape[-2:]) < size:
                vif_too_small(*t.f.shape)
            images = filter_valid(images, taps, step=2)
        if min(images.shape[-2:]) < size:
            vif_too_small(*t.f.shape)
        for top in range(0, images.shape[-2] - size + 1, _STRIP_ROWS):
            strip_num, strip_den = vif_sums(filter_valid(moment_stack(images[:, top:top + _STRIP_ROWS + size - 1]), taps))
            num += strip_num
            den += strip_den
    with np.errstate(divide="ignore", invalid="ignore"):
        per_source = num / den
    per_source[np.isnan(per_source)] = 1.0
    return float(per_source.sum())


def moment_stack(images: np.ndarray) -> np.ndarray:
    """[A, B, F] → [A, B, F, A², B², F², AF, BF], whose window means are VIF's moments."""
    stack = np.empty((8, *images.shape[1:]))
    stack[0:3] = images
    np.multiply(images, images, out=stack[3:6])
    np.multiply(images[:2], images[2], out=stack[6:8])
    return stack


def vif_sums(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VIF's numerator and denominator sums (per source) from the filtered stack `m` of one scale (which serves
    as scratch space). log10 in both sums: the common factor 1/ln 10 cancels in num/den, so natural logs (log1p)
    suffice."""
    eps, noise = _VIF_EPS, _VIF_NOISE
    mu1, mu2, s1, s2, s12 = m[0:2], m[2], m[3:5], m[5], m[6:8]
    s12 -= mu1 * mu2
    s1 -= np.multiply(mu1, mu1, out=mu1)
    np.maximum(s1, 0.0, out=s1)
    s2 -= np.multiply(mu2, mu2, out=mu2)
    np.maximum(s2, 0.0, out=s2)
    g = s1 + eps
    np.divide(s12, g, out=g)
    sv = s12 * g
    np.subtract(s2, sv, out=sv)
    # The reference's cases, folded: it zeroes g where g < 0, σ1² < eps or σ2² < eps, and there the numerator
    # term vanishes whatever sv is. Here g < 0 is clipped to 0, σ1² < eps is zeroed (as the reference does for
    # the denominator), which zeroes g²σ1² too (g is finite), and only σ2² < eps zeroes g itself.
    np.maximum(g, 0.0, out=g)
    np.copyto(s1, 0.0, where=s1 < eps)
    np.copyto(g, 0.0, where=s2 < eps)
    np.maximum(sv, eps, out=sv)
    sv += noise
    g *= g
    g *= s1
    g /= sv
    num = np.log1p(g, out=g).sum(axis=(-2, -1))
    s1 *= 1.0 / noise
    den = np.log1p(s1, out=s1).sum(axis=(-2, -1))
    return num, den


def vif_too_small(height: int, width: int) -> None:
    """The error for images too small for VIF's four scales (also raised by the torch path)."""
    from ..errors import FusekitError

    raise FusekitError(f"VIF needs images of at least 41x41 pixels, got {width}x{height}", "leave VIF out with --metrics")


@define("Qabf", E, "Xydeas-Petrovic edge preservation, Sobel, zero padding", (0.0, 1.0))
def qabf_evaluator(t: Triple) -> float:
    return qabf(t, dtype=np.float32)


def check_ssim_size(height: int, width: int) -> None:
    """SSIM's 7x7 windows must fit (also checked by the torch path)."""
    if min(height, width) < 7:
        from ..errors import FusekitError

        raise FusekitError(f"SSIM needs images of at least 7x7 pixels, got {width}x{height}", "leave SSIM out with --metrics")


@define("SSIM", E, "SSIM(F,A) + SSIM(F,B), skimage defaults (7x7 uniform, sample covariance), data_range 255", (-2.0, 2.0))
def ssim(t: Triple) -> float:
    """Box sums of the valid 7×7 windows are exactly scikit-image's map with its 3-pixel border cropped. Worked
    through in strips of output rows (as VIF); the maps' sum over both sources is divided by their size at the end."""
    size = 7
    check_ssim_size(*t.f.shape)
    # On grey levels this is float32 throughout, as scikit-image computes for the evaluator's float32 images.
    images = grey_stack(t) if grey_levels(t) else np.stack([t.a, t.b, t.f])
    rows, columns = (n - size + 1 for n in t.f.shape)
    total = 0.0
    for top in range(0, rows, _STRIP_ROWS):
        total += ssim_sum(images[:, top:top + _STRIP_ROWS + size - 1], size)
    return total / (rows * columns)


def ssim_sum(images: np.ndarray, size: int) -> float:
    """Σ over both sources of the SSIM map of the valid size×size windows of [A, B, F]."""
    stack = np.empty((8, *images.shape[1:]), dtype=images.dtype)
    stack[0:3] = images
    np.multiply(images, images, out=stack[3:6])
    np.multiply(images[0:2], images[2], out=stack[6:8])
    m = box_sum_valid(stack, size)
    m *= m.dtype.type(1.0 / (size * size))
    ux, uy, uxx, uyy, uxy = m[0:2], m[2], m[3:5], m[5], m[6:8]
    cov_norm = size * size / (size * size - 1.0)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    uxuy = ux * uy
    numerator = 2.0 * uxuy + c1
    uxy -= uxuy
    uxy *= 2.0 * cov_norm
    uxy += c2
    numerator *= uxy
    ux *= ux
    uxx -= ux
    uy2 = uy * uy
    uxx += uyy - uy2
    uxx *= cov_norm
    uxx += c2
    ux += uy2 + c1
    ux *= uxx
    numerator /= ux
    return float(numerator.sum(dtype=np.float64))
