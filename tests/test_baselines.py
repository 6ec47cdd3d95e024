"""Training-free baselines on real DEV pairs: Mertens against OpenCV, and each method's behaviour where one source
is clearly the better one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import pair_paths, run_fusekit
from scipy.ndimage import gaussian_filter

from fusekit.io.images import read_image, to_float, to_grey
from fusekit.models import FUSION_MODELS
from fusekit.models.baselines import DEFAULT
from fusekit.models.baselines.focus import decision_map
from fusekit.models.baselines.gff import guided_filter_fusion
from fusekit.models.baselines.lp import pyramid_fusion
from fusekit.models.baselines.mertens import exposure_fusion
from fusekit.models.baselines.pyramid import collapse, laplacian_pyramid

cv2 = pytest.importorskip("cv2")  # test-only dependency


def _float_pair(task: str, dataset: str, name: str, grey: bool = False):
    a, b = (read_image(path) for path in pair_paths(task, dataset, name))
    if grey:
        return to_grey(a) / np.float32(255), to_grey(b) / np.float32(255)
    return to_float(a), to_float(b)


# ------------------------------------------------------------------------------------------- Mertens vs OpenCV

# Tolerance: OpenCV rounds some float sums in another order (SIMD tails); where every weight of a pixel is rounding
# noise (flat, saturated areas) that decides the blend, so a few pixels differ visibly. Everywhere else the two
# agree to ~1e-6. Bar: mean |difference| below 5e-4 and at least 99.5 % of values within 1/255.
@pytest.mark.parametrize("name", ["Chair", "Window2"])
def test_mertens_matches_opencv_on_real_pairs(name):
    over, under = (read_image(path) for path in pair_paths("MEF", "MEFB", name))
    reference = cv2.createMergeMertens(1.0, 1.0, 1.0).process([over, under])  # RGB in, so its grey is BT.601
    ours = exposure_fusion([to_float(over), to_float(under)])
    assert ours.shape == reference.shape and ours.dtype == np.float32
    difference = np.abs(ours - reference)
    assert difference.mean() < 5e-4
    assert (difference <= 1 / 255).mean() >= 0.995


def test_mertens_matches_opencv_on_grey():
    over, under = (to_grey(read_image(path)).astype(np.uint8) for path in pair_paths("MEF", "MEFB", "Chair"))
    reference = cv2.createMergeMertens(1.0, 1.0, 1.0).process([over, under])
    ours = exposure_fusion([to_float(over), to_float(under)])
    difference = np.abs(ours - reference)
    assert difference.mean() < 5e-4
    assert (difference <= 1 / 255).mean() >= 0.995


def test_pyramid_matches_opencv_and_inverts():
    image = to_float(read_image(pair_paths("MFF", "MFIFB", "stand_02")[0]))[:101, :77]
    bands = laplacian_pyramid(image, 4)
    down = cv2.pyrDown(image)
    assert np.abs(bands[0] - (image - cv2.pyrUp(down, dstsize=(77, 101)))).max() < 1e-6
    assert np.abs(collapse(bands) - image).max() < 1e-5


def test_mertens_takes_overexposed_areas_from_the_underexposed_image():
    over, under = _float_pair("MEF", "MEFB", "Igloo")
    fused = exposure_fusion([over, under])
    saturated = over.min(axis=2) > 0.98  # 90 % of Igloo's over-exposed frame is blown out
    assert saturated.mean() > 0.5
    from_under = np.abs(fused - under)[saturated].mean()
    from_over = np.abs(fused - over)[saturated].mean()
    assert from_under < from_over / 4, (from_under, from_over)


# ------------------------------------------------------------------------------------------------ focus map


def test_focus_map_picks_the_sharp_half_of_each_source():
    """A = a real image with its left half blurred, B = the same with its right half blurred."""
    sharp = to_float(read_image(pair_paths("MFF", "MFIFB", "stand_02")[0]))  # 256x256 grey
    blurred = gaussian_filter(sharp, 3.0)
    half = sharp.shape[1] // 2
    a, b = sharp.copy(), sharp.copy()
    a[:, :half], b[:, half:] = blurred[:, :half], blurred[:, half:]
    weight = decision_map(a, b)
    assert weight[:, half + 16:].mean() > 0.95 and weight[:, : half - 16].mean() < 0.05
    fused = FUSION_MODELS.get("focus-map").fuse_arrays(a, b, "mff")
    inner = np.s_[:, list(range(8, half - 16)) + list(range(half + 16, sharp.shape[1] - 8))]
    assert np.abs(fused - sharp)[inner].mean() < 0.005


def test_focus_map_on_a_real_colour_pair():
    a, b = _float_pair("MFF", "MFIFB", "tsai_06")
    fused = FUSION_MODELS.get("focus-map").fuse_arrays(a, b, "mff")
    assert fused.shape == a.shape and fused.dtype == np.float32
    assert fused.min() >= 0 and fused.max() <= 1
    # every pixel is a convex blend of the sources
    low, high = np.minimum(a, b), np.maximum(a, b)
    assert np.all(fused >= low - 1e-5) and np.all(fused <= high + 1e-5)


# ------------------------------------------------------------------------------------------------ IVF / MIF


@pytest.mark.parametrize("fuse", [guided_filter_fusion, pyramid_fusion], ids=["gff", "lp"])
@pytest.mark.parametrize("task,dataset,name", [("IVF", "TNO", "18"), ("MIF", "Harvard", "CT_2013")])
def test_multimodal_baselines_on_real_pairs(fuse, task, dataset, name):
    a, b = _float_pair(task, dataset, name, grey=True)
    fused = fuse(a, b)
    assert fused.shape == a.shape and fused.dtype == np.float32
    assert fused.min() >= 0 and fused.max() <= 1
    # both sources contribute: the fused image correlates with each of them
    for source in (a, b):
        assert np.corrcoef(fused.ravel(), source.ravel())[0, 1] > 0.3


@pytest.mark.parametrize("fuse", [guided_filter_fusion, pyramid_fusion], ids=["gff", "lp"])
def test_multimodal_baselines_keep_the_only_informative_source(fuse):
    mri, _ = _float_pair("MIF", "Harvard", "CT_2013", grey=True)
    flat = np.full_like(mri, 0.5)
    for fused in (fuse(mri, flat), fuse(flat, mri)):
        assert np.corrcoef(fused.ravel(), mri.ravel())[0, 1] > 0.95


# ------------------------------------------------------------------------------------------ registry and CLI


def test_every_task_has_a_registered_default_baseline():
    for task, name in DEFAULT.items():
        spec = FUSION_MODELS.get(name)
        assert spec.kind == "training-free" and task in spec.tasks and spec.fuse_arrays is not None
        first = next(n for n, s in FUSION_MODELS.items() if s.kind == "training-free" and task in s.tasks)
        assert first == name  # the runner's fallback default is the best baseline
    assert FUSION_MODELS.get("mertens").colour == "rgb" and FUSION_MODELS.get("gff").colour == "luma"


def test_baseline_through_the_fuse_command(tmp_path):
    a, b = pair_paths("MEF", "MEFB", "Chair")
    out = tmp_path / "fused.png"
    result = run_fusekit("fuse", a, b, "--task", "mef", "--model", "mertens", "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    fused = read_image(out)
    over = read_image(a)
    assert fused.shape == over.shape and fused.dtype == np.uint8
    expected = np.round(np.clip(exposure_fusion([to_float(over), to_float(read_image(b))]), 0, 1) * 255)
    assert np.abs(fused.astype(np.float32) - expected).max() <= 1
