"""The "vifb" convention: the MATLAB VIFB toolbox's 13 metrics (xingchenzhang/VIFB `metrics/`), as
`golden/metrics/VIFB_CONVENTIONS.md` describes them — including its unusual SF, AG, RMSE and PSNR, and the
perceptual metrics Qcb (Chen–Blum) and Qcv (Chen–Varshney) that MGFusion reports.

Everything is float64, as MATLAB's ``double``. Colour handling (per-channel averages) lives in `triple.py` and
`compute.py`; the functions here see one grey triple.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft

from .evaluator import entropy_bits, matlab_gradient_magnitude, mutual_information, qabf
from .evaluator import sd as evaluator_sd
from .filters import filter_same_zero, filter_valid, gaussian_taps, sobel
from .registry import define
from .triple import Triple

V = "vifb"


def _levels(image: np.ndarray) -> np.ndarray:
    """Integer grey levels 0..255 (VIFB indexes histograms with the values themselves)."""
    return np.clip(np.round(image), 0, 255).astype(np.int64).ravel()


@define("EN", V, "entropy of floor(F) over 256 levels, log2", (0.0, 8.0))
def en(t: Triple) -> float:
    return entropy_bits(t.f, np.floor)


@define("CE", V, "(KL(A||F) + KL(B||F)) / 2, log2, levels where either probability is 0 skipped", (-math.inf, math.inf))
def ce(t: Triple) -> float:
    p_f = np.bincount(_levels(t.f), minlength=256)

    def divergence(x: np.ndarray) -> float:
        counts = np.bincount(_levels(x), minlength=256)
        n = x.size
        keep = (counts > 0) & (p_f > 0)
        p, q = counts[keep] / n, p_f[keep] / n
        return float((p * np.log2(p / q)).sum())

    return (divergence(t.a) + divergence(t.b)) / 2.0


def _stretched_bins(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Min-max stretch to [0, 1], then bin round(255·x) (halves away from zero, as MATLAB's int16)."""
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.floor(255.0 * scaled + 0.5).astype(np.int64).ravel(), 256


@define("MI", V, "MI(A,F) + MI(B,F), images min-max stretched to 256 bins, nats")
def mi(t: Triple) -> float:
    f = _stretched_bins(t.f)
    return mutual_information(_stretched_bins(t.a), f) + mutual_information(_stretched_bins(t.b), f)


def _rmse(t: Triple) -> float:
    def q(x: np.ndarray) -> float:
        return math.sqrt(float(((x - t.f) ** 2).sum())) / t.f.size

    return (q(t.a) + q(t.b)) / 2.0


@define("RMSE", V, "(sqrt(SSE(A,F)) + sqrt(SSE(B,F))) / (2 H W); not the usual RMSE")
def rmse(t: Triple) -> float:
    return _rmse(t)


@define("PSNR", V, "10 log10(255² / RMSE_vifb); not the usual PSNR", (-math.inf, math.inf))
def psnr(t: Triple) -> float:
    error = _rmse(t)
    return 10.0 * math.log10(255.0 ** 2 / error) if error > 0 else math.inf


@define("AG", V, "sum of sqrt((gx² + gy²)/2) over H·W pixels, divided by (H-1)(W-1)")
def ag(t: Triple) -> float:
    height, width = t.f.shape
    if height < 2 or width < 2:
        return math.nan
    return float(matlab_gradient_magnitude(t.f).sum()) / ((height - 1) * (width - 1))


@define("EI", V, "mean Sobel magnitude of F, replicate padding")
def ei(t: Triple) -> float:
    gx, gy = sobel(t.f, border="replicate")  # VIFB's kernels are these up to sign and transposition
    return float(np.sqrt(gx * gx + gy * gy).mean())


@define("Qabf", V, "Xydeas-Petrovic on 255-scaled images (equal strengths give Qg = 0.9994)", (0.0, 1.0))
def qabf_vifb(t: Triple) -> float:
    return qabf(t, equal_scale=255.0)


# VIFB's SD is the evaluator's formula (population standard deviation of every value of F): one function, both
# conventions.
sd = define("SD", V, "population standard deviation of F", (0.0, 127.5))(evaluator_sd)


@define("SF", V, "sqrt((sum row diff² + sum column diff²) / (H W)); colour: channels side by side")
def sf(t: Triple) -> float:
    f = t.f
    return math.sqrt((float(((f[:, 1:] - f[:, :-1]) ** 2).sum()) + float(((f[1:, :] - f[:-1, :]) ** 2).sum())) / f.size)


@define("SSIM", V, "SSIM(A,F) + SSIM(B,F), Wang's 11x11 Gaussian (sigma 1.5), population moments, valid", (-2.0, 2.0))
def ssim(t: Triple) -> float:
    if min(t.f.shape) < 11:
        from ..errors import FusekitError

        raise FusekitError(f"VIFB SSIM needs images of at least 11x11 pixels, got {t.f.shape[1]}x{t.f.shape[0]}", "leave SSIM out with --metrics")
    taps = gaussian_taps(11, 1.5)
    x = np.stack([t.a, t.b])
    y = t.f
    m = filter_valid(np.concatenate([x, y[None], x * x, (y * y)[None], x * y]), taps)
    mx, my, mxx, myy, mxy = m[0:2], m[2], m[3:5], m[5], m[6:8]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean(axis=(-2, -1)).sum())


# ------------------------------------------------------------------------------------ Chen–Blum, Chen–Varshney


def _normalise(image: np.ndarray) -> np.ndarray:
    """round(255·(X − min)/(max − min)), halves away from zero; all-zero stays, other constants give NaN."""
    low, high = float(image.min()), float(image.max())
    if high == low:
        return image.astype(np.float64) if high == 0 else np.full(image.shape, math.nan)
    return np.floor(255.0 * (image - low) / (high - low) + 0.5)


@functools.lru_cache(maxsize=16)
def _radius(height: int, width: int, scale: float) -> np.ndarray:
    """MATLAB ``freqspace([H W], 'meshgrid')`` scaled by size/scale: radial frequency, fftshift-ed layout."""
    u = (np.arange(width) - width // 2) / scale
    v = (np.arange(height) - height // 2) / scale
    return np.sqrt(u[None, :] ** 2 + v[:, None] ** 2)


def _csf_filter(images: np.ndarray, csf: np.ndarray) -> np.ndarray:
    """real(ifft2(ifftshift(fftshift(fft2(X)) · S))) for a stack of images.

    The shifts fold into S; S is even (it depends on |frequency| only), so the product's inverse is real and the
    half-spectrum transforms give it directly, at half the cost.
    """
    height, width = images.shape[-2:]
    half = np.fft.ifftshift(csf)[:, : width // 2 + 1]
    spectrum = scipy.fft.rfft2(images, axes=(-2, -1))
    return scipy.fft.irfft2(spectrum * half, s=(height, width), axes=(-2, -1))


def _blum_taps(sigma: float) -> np.ndarray:
    """1-D factor of the unnormalised 31×31 Gaussian exp(−(x²+y²)/2σ²)/(2πσ²)."""
    x = np.arange(-15, 16, dtype=np.float64)
    return np.exp(-(x * x) / (2.0 * sigma * sigma)) / math.sqrt(2.0 * math.pi * sigma * sigma)


@define("Qcb", V, "Chen-Blum: DoG CSF, local contrast, masking; mean preservation map", (0.0, 1.0))
def qcb(t: Triple) -> float:
    stack = np.stack([_normalise(t.a), _normalise(t.b), _normalise(t.f)])
    height, width = t.f.shape
    r = _radius(height, width, 15.0)
    csf = np.exp(-(r / 15.3870) ** 2) - 0.7622 * np.exp(-(r / 1.3456) ** 2)
    filtered = _csf_filter(stack, csf)
    with np.errstate(divide="ignore", invalid="ignore"):
        contrast = np.abs(filter_same_zero(filtered, _blum_taps(2.0)) / filter_same_zero(filtered, _blum_taps(4.0)) - 1.0)
        masked = contrast ** 3 / (contrast ** 2 + 1e-4)
        c_a, c_b, c_f = masked
        q_af = np.where(c_a < c_f, c_a / c_f, c_f / c_a)
        q_bf = np.where(c_b < c_f, c_b / c_f, c_f / c_b)
        weight_a = c_a ** 2 / (c_a ** 2 + c_b ** 2)
        weight_b = c_b ** 2 / (c_a ** 2 + c_b ** 2)
        return float((weight_a * q_af + weight_b * q_bf).mean())


def _block_sums(image: np.ndarray, block: int = 16) -> np.ndarray:
    """Sums over non-overlapping block×block tiles, zero-padding the bottom and right (MATLAB ``blkproc``)."""
    height, width = image.shape
    padded = np.pad(image, ((0, -height % block), (0, -width % block)))
    return padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block).sum(axis=(1, 3))


@define("Qcv", V, "Chen-Varshney: 16x16 blocks, edge saliency G^5, Mannos-Sakrison CSF; lower is better")
def qcv(t: Triple) -> float:
    a, b, f = _normalise(t.a), _normalise(t.b), _normalise(t.f)
    gx, gy = sobel(np.stack([a, b]))  # Qcv's Gy kernel is −Sy: same magnitude
    saliency = [_block_sums(g) for g in np.sqrt(gx * gx + gy * gy) ** 5]
    height, width = f.shape
    r = _radius(height, width, 4.0)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    filtered = _csf_filter(np.stack([a - f, b - f]), csf)
    distortion = [_block_sums(d * d) / 256.0 for d in filtered]
    with np.errstate(divide="ignore", invalid="ignore"):
        total = float((saliency[0] + saliency[1]).sum())
        return float((saliency[0] * distortion[0] + saliency[1] * distortion[1]).sum()) / total if total > 0 else math.nan
