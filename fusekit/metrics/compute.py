"""`compute`: the metric values of one fused image against its two sources, in one convention.

This is the one entry point behind the CLI, `train`'s validation and the benchmarks, so all of them report the
same numbers. Inputs are numpy arrays or torch tensors (CPU or CUDA; copied to the CPU, where the float64
reference arithmetic runs) on the 0–255 scale.
"""

from __future__ import annotations

import math

import numpy as np

from . import evaluator, vifb  # noqa: F401  (their definitions register on import)
from ..errors import FusekitError
from .registry import CONVENTIONS, METRICS, needs_sources, resolve
from .triple import Triple, as_array, check_sizes, evaluator_triples, vifb_triples

_SPLIT = {"evaluator": evaluator_triples, "vifb": vifb_triples}


def compute(fused, a=None, b=None, metrics=None, convention: str = "evaluator") -> dict[str, float]:
    """Metric name → value for one triple. `metrics`: names or aliases (list or "EN,SD"), default all of the
    convention's. A value the definition leaves undefined (e.g. SCD when F equals a source) is NaN."""
    convention = CONVENTIONS.canonical(convention)
    names = resolve(metrics, convention)
    f = as_array(fused, "fused")
    a = None if a is None else as_array(a, "A")
    b = None if b is None else as_array(b, "B")
    if needs_sources(names) and (a is None or b is None):
        wanting = [name for name in names if "a" in METRICS.get(name).needs]
        raise FusekitError(f"{', '.join(wanting)} need both source images", "pass a and b, or ask only for EN, SD, SF, AG, EI")
    check_sizes(f, a, b)
    triples = _SPLIT[convention](f, a, b)
    values = {}
    for name in names:
        definition = METRICS.get(name).definitions[convention]
        if convention == "vifb" and name == "SF" and len(triples) > 1:
            values[name] = definition.fn(Triple(np.concatenate([t.f for t in triples], axis=1)))
        else:
            values[name] = float(np.mean([definition.fn(t) for t in triples]))
    return values


def is_missing(value: float | None) -> bool:
    """True for the values the CLI reports as null: None, NaN, ±inf."""
    return value is None or not math.isfinite(value)
