"""The torch path of the evaluator metrics (`fusekit/metrics/on_torch.py`, what `compute` uses for CUDA tensors),
run here on CPU tensors against the numpy path on real golden triples.

Tolerances: `on_torch.agreement` (relative 1e-9; Qabf and VIF 1e-6, with the reasons there).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import DATA, GOLDEN
from fusekit.errors import FusekitError
from fusekit.io.images import read_image
from fusekit.metrics import compute, resolve
from fusekit.metrics.on_torch import agreement, compute_on_device

ROWS = json.loads((GOLDEN / "metrics" / "dev_reference.json").read_text())["rows"]
NAMES = resolve(None, "evaluator")


def tensor(x: np.ndarray) -> torch.Tensor:
    """A tensor as callers pass them: colour channels first."""
    return torch.tensor(np.moveaxis(x, -1, 0) if x.ndim == 3 else x)


def triple(task: str, crop=(slice(0, 120), slice(0, 160))):
    row = next(r for r in ROWS if r["task"] == task)
    return tuple(read_image(path)[crop] for path in (GOLDEN / "metrics" / "fused" / row["f"], DATA / row["a"], DATA / row["b"]))


def assert_same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(value, rel=agreement(name), abs=1e-12), name


@pytest.mark.parametrize("task", ["IVF", "MIF", "MEF", "MFF"])
def test_torch_path_gives_the_numpy_numbers_on_grey_levels(task):
    f, a, b = triple(task)
    expected = compute(f, a, b)
    got = compute_on_device(*(tensor(x) for x in (f, a, b)), NAMES)
    assert_same(got, expected)


def test_torch_path_on_float_images_that_are_not_grey_levels():
    """Non-integer values take the float64 branches (SSIM sums, MI's categories, Qabf's Sobel)."""
    f, a, b = (x if x.ndim == 2 else x.mean(axis=-1) for x in triple("IVF"))
    f, a, b = (x.astype(np.float64) * 0.731 + 0.25 for x in (f, a, b))
    expected = compute(f, a, b)
    assert_same(compute_on_device(*(tensor(x) for x in (f, a, b)), NAMES), expected)


def test_torch_path_refuses_images_too_small_for_vif_as_numpy_does():
    f, a, b = (x[:30, :30] for x in triple("MFF"))
    tensors = [tensor(x) for x in (f, a, b)]
    with pytest.raises(FusekitError, match="VIF needs images of at least 41x41"):
        compute_on_device(*tensors, ["VIF"])
    with pytest.raises(FusekitError, match="VIF needs images of at least 41x41"):
        compute(f, a, b, metrics=["VIF"])
