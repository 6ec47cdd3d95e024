"""The shared training losses against direct computations on real image pairs (tolerances stated per test).

References are written independently of the torch code: Sobel with scipy.ndimage (zero padding), SSIM with
explicit 11x11 gaussian windows (the classic Wang et al. recipe; OpenCV filtering for the 'valid' form, as the
widely used numpy SSIM implementation does), L1 terms with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import torch
from conftest import pair_paths

from fusekit.io.images import read_image, to_grey
from fusekit.models.losses import (FILM_WEIGHTS, LOSSES, gradient_loss, intensity_loss, sobel_gradient, ssim,
                                  ssim_loss)

SX = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
SY = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float64)


def grey01(path) -> np.ndarray:
    return to_grey(read_image(path)).astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def pair():
    """A 96 x 128 window of a real IVF pair and a plausible 'fused' image (a blend), as float64 [0, 1]."""
    a_path, b_path = pair_paths("IVF", "TNO", "10")
    a, b = grey01(a_path)[100:196, 100:228], grey01(b_path)[100:196, 100:228]
    fused = 0.6 * np.maximum(a, b) + 0.4 * (a + b) / 2
    return a, b, fused


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32))[None, None]


def np_sobel(x: np.ndarray) -> np.ndarray:
    gx = scipy.ndimage.correlate(x, SX, mode="constant", cval=0.0)
    gy = scipy.ndimage.correlate(x, SY, mode="constant", cval=0.0)
    return np.abs(gx) + np.abs(gy)


def np_window() -> np.ndarray:
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    return np.outer(g, g)


def np_ssim_same(x: np.ndarray, y: np.ndarray) -> float:
    """Zero-padded 'same' SSIM, the form of FILM's released helper (conv2d, padding = window // 2)."""
    w = np_window()
    f = lambda z: scipy.signal.correlate2d(z, w, mode="same", boundary="fill", fillvalue=0.0)  # noqa: E731
    c1, c2 = 0.01**2, 0.03**2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def cv2_ssim_valid(x: np.ndarray, y: np.ndarray) -> float:
    """The classic numpy/OpenCV SSIM (valid windows only), on [0, 1] data."""
    import cv2

    w = np_window()
    f = lambda z: cv2.filter2D(z, -1, w)[5:-5, 5:-5]  # noqa: E731
    c1, c2 = 0.01**2, 0.03**2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_sobel_gradient_matches_scipy_with_zero_padding(pair):
    a, _, _ = pair
    got = sobel_gradient(t(a))[0, 0].numpy()
    np.testing.assert_allclose(got, np_sobel(a), atol=1e-5)  # float32 vs float64


def test_sobel_gradient_is_per_channel():
    x = torch.rand(2, 3, 20, 24)
    together = sobel_gradient(x)
    apart = torch.cat([sobel_gradient(x[:, c:c + 1]) for c in range(3)], dim=1)
    assert torch.allclose(together, apart, atol=1e-6)


def test_ssim_same_padding_matches_direct_computation(pair):
    a, b, fused = pair
    assert float(ssim(t(a), t(fused))) == pytest.approx(np_ssim_same(a, fused), abs=1e-5)
    assert float(ssim(t(a), t(b))) == pytest.approx(np_ssim_same(a, b), abs=1e-5)
    assert float(ssim(t(a), t(a))) == pytest.approx(1.0, abs=1e-6)


def test_ssim_valid_matches_the_opencv_recipe(pair):
    a, b, _ = pair
    assert float(ssim(t(a), t(b), padding="valid")) == pytest.approx(cv2_ssim_valid(a, b), abs=1e-5)


def test_ssim_is_differentiable(pair):
    a, _, fused = pair
    x = t(fused).requires_grad_(True)
    (1 - ssim(t(a), x)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_intensity_and_gradient_terms_match_numpy(pair):
    a, b, fused = pair
    assert float(intensity_loss(t(fused), t(a), t(b), "max")) == pytest.approx(np.abs(fused - np.maximum(a, b)).mean(), abs=1e-6)
    assert float(intensity_loss(t(fused), t(a), t(b), "mean")) == pytest.approx(np.abs(fused - (a + b) / 2).mean(), abs=1e-6)
    expected = np.abs(np_sobel(fused) - np.maximum(np_sobel(a), np_sobel(b))).mean()
    assert float(gradient_loss(t(fused), t(a), t(b))) == pytest.approx(expected, abs=1e-6)
    assert float(ssim_loss(t(fused), t(a), t(b))) == pytest.approx(2 - np_ssim_same(a, fused) - np_ssim_same(b, fused), abs=2e-5)


@pytest.mark.parametrize("task", ["ivf", "mif", "mef", "mff"])
def test_film_loss_per_task_matches_the_paper(pair, task):
    """FILM §5: IVF/MIF L1(F, max) + 20·grad; MEF L1(F, mean) + 500·grad + 1·SSIM term; MFF the same with 300."""
    a, b, fused = pair
    grad = np.abs(np_sobel(fused) - np.maximum(np_sobel(a), np_sobel(b))).mean()
    if task in ("ivf", "mif"):
        expected = np.abs(fused - np.maximum(a, b)).mean() + 20 * grad
    else:
        alpha1 = {"mef": 500, "mff": 300}[task]
        ssim_term = 2 - np_ssim_same(a, fused) - np_ssim_same(b, fused)
        expected = np.abs(fused - (a + b) / 2).mean() + alpha1 * grad + ssim_term
    total, parts = LOSSES.get("film")({"fused": t(fused)}, {"a": t(a), "b": t(b)}, task)
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert set(parts) == ({"int", "grad"} if FILM_WEIGHTS[task][2] == 0 else {"int", "grad", "ssim"})
    assert all(isinstance(value, float) for value in parts.values())


def test_film_loss_is_float32_under_reduced_precision(pair):
    a, b, fused = pair
    total, _ = LOSSES.get("film")({"fused": t(fused).to(torch.bfloat16)}, {"a": t(a), "b": t(b)}, "mef")
    assert total.dtype == torch.float32
