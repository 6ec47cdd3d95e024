"""The `fusekit.metrics` Python API: torch tensors give the numpy numbers, the registry's metadata, colour
handling per convention, errors, and the fast filters against the plain 2-D definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from conftest import DATA, GOLDEN
from fusekit.errors import FusekitError, UsageError
from fusekit.io.images import read_image, to_grey
from fusekit.metrics import CONVENTIONS, METRICS, compute, resolve
from fusekit.metrics.filters import box_sum_valid, filter_same_zero, filter_valid, gaussian_taps, sobel
from fusekit.metrics.triple import matlab_grey

FUSED = GOLDEN / "metrics" / "fused"


@pytest.fixture(scope="module")
def crop():
    """A 120x160 crop of a real IVF triple (colour visible image), to keep the API tests quick."""
    f = read_image(FUSED / "IVF/RoadScene/FLIR_06570_mean.png")[:120, :160]
    a = read_image(DATA / "IVF/RoadScene/ir/FLIR_06570.png")[:120, :160]
    b = read_image(DATA / "IVF/RoadScene/vi/FLIR_06570.png")[:120, :160]
    return f, a, b


def test_torch_tensors_give_the_numpy_numbers(crop):
    f, a, b = crop
    b_grey = to_grey(b)
    for convention in ("evaluator", "vifb"):
        expected = compute(f, a, b_grey, convention=convention)
        as_tensors = compute(torch.tensor(f), torch.tensor(a).float(), torch.tensor(b_grey)[None, None],
                             convention=convention)
        assert as_tensors.keys() == expected.keys()
        for name, value in expected.items():
            assert as_tensors[name] == pytest.approx(value, rel=1e-12, abs=1e-12), (convention, name)


def test_torch_colour_tensor_is_channels_first(crop):
    f, a, b = crop
    expected = compute(f, a, b, metrics="MI,SSIM")
    chw = torch.tensor(b).permute(2, 0, 1).contiguous()
    assert compute(f, a, chw, metrics="MI,SSIM") == pytest.approx(expected, rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors(crop):
    f, a, b = crop
    expected = compute(f, a, to_grey(b))
    got = compute(*(torch.from_numpy(np.asarray(x, dtype=np.float32)).cuda() for x in (f, a, to_grey(b))))
    for name, value in expected.items():  # computed on the GPU: tolerances of tests/test_metrics_torch.py
        assert got[name] == pytest.approx(value, rel=1e-6 if name == "Qabf" else 1e-9), name


def test_evaluator_converts_colour_as_it_reads_files(crop):
    f, a, b = crop
    assert compute(f, a, b) == compute(f, a, to_grey(b))


def test_vifb_colour_handling(crop):
    f, a, b = crop
    # grey F, colour source: MATLAB rgb2gray on the source
    assert compute(f, a, b, "MI,Qcv", "vifb") == compute(f, a, matlab_grey(b), "MI,Qcv", "vifb")
    # colour F: per-channel average (a grey source reused per channel); SF: channels side by side
    fc = np.stack([f, np.roll(f, 3, axis=1), f // 2], axis=-1)
    got = compute(fc, a, b, "SSIM,SF,EN", "vifb")
    per_channel = [compute(fc[..., k], a, b[..., k], "SSIM,EN", "vifb") for k in range(3)]
    assert got["SSIM"] == pytest.approx(np.mean([v["SSIM"] for v in per_channel]))
    assert got["EN"] == pytest.approx(np.mean([v["EN"] for v in per_channel]))
    side = np.concatenate([fc[..., k] for k in range(3)], axis=1)
    assert got["SF"] == pytest.approx(compute(side, metrics="SF", convention="vifb")["SF"])


def test_registry_metadata():
    assert METRICS.get("viff").name == "VIF"
    assert METRICS.get("Qcv").higher_is_better is False
    assert METRICS.get("Qcv").definitions.keys() == {"vifb"}
    assert METRICS.get("EN").needs == ("fused",)
    assert METRICS.get("SSIM").needs == ("fused", "a", "b")
    for name in CONVENTIONS.names():
        for metric in CONVENTIONS.get(name).metrics:
            definition = METRICS.get(metric).definitions[name]
            assert definition.summary and definition.range[0] < definition.range[1]
    assert resolve("en, viff ,Qabf", "evaluator") == ["EN", "VIF", "Qabf"]
    assert resolve(None, "vifb")[-1] == "Qcv"
    with pytest.raises(UsageError, match="did you mean 'SSIM'"):
        resolve("SSMI", "evaluator")
    with pytest.raises(UsageError, match="vifb"):
        resolve("Qcb", "evaluator")


def test_values_are_in_their_documented_range(crop):
    f, a, b = crop
    for convention in ("evaluator", "vifb"):
        for name, value in compute(f, a, b, convention=convention).items():
            low, high = METRICS.get(name).definitions[convention].range
            assert low <= value <= high, (convention, name, value)


def test_errors_and_undefined_values(crop):
    f, a, b = crop
    with pytest.raises(FusekitError, match="size mismatch"):
        compute(f, a[:100], b)
    with pytest.raises(FusekitError, match="need both source images"):
        compute(f, metrics="EN,MI")
    assert set(compute(f, metrics="EN,SD,SF,AG")) == {"EN", "SD", "SF", "AG"}
    with pytest.raises(FusekitError, match="at least 41x41"):
        compute(f[:30, :30], a[:30, :30], to_grey(b)[:30, :30], metrics="VIF")
    same = compute(a, a, a, metrics="SCD,PSNR,VIF,SSIM,Qabf")
    assert math.isnan(same["SCD"]) and math.isinf(same["PSNR"])
    assert same["VIF"] == pytest.approx(2.0) and same["SSIM"] == pytest.approx(2.0)


def test_fast_filters_equal_the_plain_2d_definitions():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(2, 53, 71)).astype(np.float64)
    # Output counts of whole blocks, whole blocks and a tail, and under one block (17 taps on 23x20: 7x4 outputs).
    for image in (x, x[:, :23, :20]):
        for size, step in ((17, 1), (9, 2), (3, 2), (11, 1), (5, 1)):
            taps = gaussian_taps(size, size / 5.0)
            window = np.outer(taps, taps)
            for k in range(2):
                expected = convolve2d(image[k], window, mode="valid")[::step, ::step]
                assert np.allclose(filter_valid(image, taps, step)[k], expected, rtol=1e-12, atol=1e-9)
    assert np.array_equal(box_sum_valid(x, 7)[0], convolve2d(x[0], np.ones((7, 7)), mode="valid"))
    taps = gaussian_taps(31, 4.0)
    assert np.allclose(filter_same_zero(x, taps)[1], convolve2d(x[1], np.outer(taps, taps), mode="same"), atol=1e-9)
    sx, sy = sobel(x)
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    ky = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    assert np.array_equal(sx[0], convolve2d(x[0], kx[::-1, ::-1], mode="same"))
    assert np.array_equal(sy[1], convolve2d(x[1], ky[::-1, ::-1], mode="same"))


def test_grey_conversion_is_the_evaluators_bit_for_bit():
    """The evaluator reads files with cv2 (float32 BGR2GRAY, np.round); to_grey must agree on every pixel,
    including the x.5 ties where a plain float sum rounds the other way (the MEF sources have some)."""
    cv2 = pytest.importorskip("cv2")
    for name in ("Lamp", "AirBellowsGap", "Balloons"):
        for folder in ("over", "under"):
            path = DATA / "MEF" / "MEFB" / folder / f"{name}.png"
            expected = np.round(cv2.cvtColor(cv2.imread(str(path)).astype(np.float32), cv2.COLOR_BGR2GRAY))
            assert np.array_equal(to_grey(read_image(path)), expected), path
