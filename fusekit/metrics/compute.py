"""`compute`: the metric values of one fused image against its two sources, in one convention.

This is the one entry point behind the CLI, `train`'s validation and the benchmarks, so all of them report the
same numbers. Inputs are numpy arrays or torch tensors on the 0–255 scale; CUDA tensors are evaluated on their
GPU by `metrics/on_torch.py` (evaluator convention), everything else on the CPU in numpy, where the metrics of
a triple run side by side on a few threads (numpy releases the GIL inside its array loops and BLAS calls).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import evaluator, vifb  # noqa: F401  (their definitions register on import)
from ..errors import FusekitError
from .registry import CONVENTIONS, METRICS, needs_sources, resolve
from .triple import Triple, as_array, check_sizes, evaluator_triples, is_cuda_tensor, vifb_triples

_SPLIT = {"evaluator": evaluator_triples, "vifb": vifb_triples}

# The costliest metrics first (measured on 640x480 triples), so the threads finish at about the same time;
# unlisted ones are cheap and go last in the order asked.
_COSTLIEST_FIRST = ("VIF", "Qcb", "Qcv", "SSIM", "Qabf", "MI", "EI", "SCD", "AG")


def compute(fused, a=None, b=None, metrics=None, convention: str = "evaluator", threads: int | None = None) -> dict[str, float]:
    """Metric name → value for one triple. `metrics`: names or aliases (list or "EN,SD"), default all of the
    convention's. A value the definition leaves undefined (e.g. SCD when F equals a source) is NaN.
    `threads`: metrics computed at once on the CPU (default: the usable cores, at most 4; 1 = one after another);
    the values do not depend on it."""
    convention = CONVENTIONS.canonical(convention)
    names = resolve(metrics, convention)
    if needs_sources(names) and (a is None or b is None):
        wanting = [name for name in names if "a" in METRICS.get(name).needs]
        raise FusekitError(f"{', '.join(wanting)} need both source images", "pass a and b, or ask only for EN, SD, SF, AG, EI")
    if convention == "evaluator" and is_cuda_tensor(fused):
        from .on_torch import compute_on_device

        return compute_on_device(fused, a, b, names)
    f = as_array(fused, "fused")
    a = None if a is None else as_array(a, "A")
    b = None if b is None else as_array(b, "B")
    check_sizes(f, a, b)
    triples = _SPLIT[convention](f, a, b)
    jobs = _jobs(names, convention, triples)
    workers = min(len(jobs), _usable_cores() if threads is None else max(1, threads))
    if workers > 1:
        if convention == "evaluator":  # settled before the threads start: it decides several metrics' arithmetic
            for t in triples:
                evaluator.grey_levels(t)
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda job: job[1](), jobs))
    else:
        results = [run() for _, run in jobs]
    per_name: dict[str, list[float]] = {}
    for (name, _), value in zip(jobs, results):
        per_name.setdefault(name, []).append(value)
    return {name: float(np.mean(per_name[name])) for name in names}


def _jobs(names: list[str], convention: str, triples: list[Triple]) -> list[tuple[str, object]]:
    """(metric name, zero-argument callable) per metric and triple, costliest first."""
    rank = {name: i for i, name in enumerate(_COSTLIEST_FIRST)}
    jobs = []
    for name in sorted(names, key=lambda n: rank.get(n, len(rank))):
        fn = METRICS.get(name).definitions[convention].fn
        if convention == "vifb" and name == "SF" and len(triples) > 1:
            # VIFB's colour SF: the channels side by side, one value.
            wide = Triple(np.concatenate([t.f for t in triples], axis=1))
            jobs.append((name, lambda fn=fn, wide=wide: fn(wide)))
        else:
            jobs.extend((name, lambda fn=fn, t=t: fn(t)) for t in triples)
    return jobs


def _usable_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def is_missing(value: float | None) -> bool:
    """True for the values the CLI reports as null: None, NaN, ±inf."""
    return value is None or not math.isfinite(value)
