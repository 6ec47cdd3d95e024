"""fusekit.metrics against the field's own implementations, on every golden row.

golden/metrics/dev_reference.json: 80 DEV triples x 12 metrics computed by the CDDFuse/FILM evaluator itself;
golden/metrics/dev_vifb_reference.json: the same triples x 13 metrics from the VIFB MATLAB files under Octave.
Tolerance (reference/METRICS.md): |x - ref| <= 1e-4 * max(1, |ref|), and missing exactly where the reference is
NaN. Qcb additionally allows 5x the row's `Qcb_roundoff_spread` (VIFB_CONVENTIONS.md: on black MIF backgrounds
Qcb divides FFT round-off by FFT round-off, so any exact FFT route moves it by up to that spread).
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest

from conftest import DATA, GOLDEN
from fusekit.io.images import read_image, to_grey
from fusekit.metrics import compute

METRICS_DIR = GOLDEN / "metrics"
TASKS = ("IVF", "MIF", "MEF", "MFF")


@functools.lru_cache(maxsize=1)
def golden(kind: str) -> list[dict]:
    name = "dev_reference.json" if kind == "evaluator" else "dev_vifb_reference.json"
    return json.loads((METRICS_DIR / name).read_text())["rows"]


@functools.lru_cache(maxsize=None)
def images(row_f: str, row_a: str, row_b: str):
    return read_image(METRICS_DIR / "fused" / row_f), read_image(DATA / row_a), read_image(DATA / row_b)


def close(value: float, reference: float, tolerance: float) -> bool:
    if reference is None or math.isnan(reference):
        return math.isnan(value)
    return math.isfinite(value) and abs(value - reference) <= tolerance


def check_rows(kind: str, task: str) -> list[str]:
    failures = []
    rows = [row for row in golden(kind) if row["task"] == task]
    assert len(rows) == 20
    for row in rows:
        f, a, b = images(row["f"], row["a"], row["b"])
        if kind == "vifb":
            # The golden VIFB run fed grey sources made exactly as the evaluator reads files (see its header).
            a, b = (to_grey(x).astype(np.uint8) if x.ndim == 3 else x for x in (a, b))
        values = compute(f, a, b, convention=kind)
        assert len(values) == (12 if kind == "evaluator" else 13)
        for name, reference in row["metrics"].items():
            value = values["VIF" if name == "VIFF" else name]
            tolerance = 1e-4 * max(1.0, abs(reference)) if reference == reference else 0.0
            if name == "Qcb":
                tolerance = max(tolerance, 5 * row["Qcb_roundoff_spread"] * abs(reference))
            if not close(value, reference, tolerance):
                failures.append(f"{row['name']} {row['fusion']} {name}: {value!r} vs reference {reference!r}")
    return failures


@pytest.mark.parametrize("task", TASKS)
def test_evaluator_convention_matches_every_golden_row(task):
    assert check_rows("evaluator", task) == []


@pytest.mark.parametrize("task", TASKS)
def test_vifb_convention_matches_every_golden_row(task):
    assert check_rows("vifb", task) == []


def test_golden_has_nan_rows_and_they_stay_missing():
    """SCD is NaN where F = max(A, B) equals a source everywhere a difference is constant: the test above would
    pass vacuously if there were none, so make sure the NaN branch is exercised."""
    nan_rows = [row for row in golden("evaluator") if any(v != v for v in row["metrics"].values())]
    assert len(nan_rows) >= 1
    row = nan_rows[0]
    values = compute(*images(row["f"], row["a"], row["b"]))
    assert math.isnan(values["SCD"])
