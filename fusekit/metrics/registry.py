"""The metric registry: what each metric is, which convention defines it how, and which way is better.

One `Metric` per name (``EN``, ``VIF``, ``Qcv``, ...) carries the facts that do not depend on the convention
(higher or lower is better, which images it needs, aliases); each convention that defines it adds a `Definition`
(the function, a one-line summary, the value range). The CLI, the docs, the "did you mean" errors and `train`'s
validation all read from here. Another package adds a metric as a ``fusekit.metrics`` entry point naming a `Metric`
with its `definitions` filled in (docs/PLUGINS.md); it is imported only when asked for or listed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UsageError
from ..registry import Registry

NO_REFERENCE = ("fused",)
WITH_SOURCES = ("fused", "a", "b")


@dataclass(frozen=True)
class Definition:
    """How one convention computes a metric. `fn` takes a `Triple` and returns a float (NaN when undefined)."""

    convention: str
    fn: Callable
    summary: str
    range: tuple[float, float]


@dataclass
class Metric:
    name: str  # spelled as in reference/METRICS.md and VIFB_CONVENTIONS.md: the JSON key
    title: str
    higher_is_better: bool
    needs: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    definitions: dict[str, Definition] = field(default_factory=dict)

    @property
    def better(self) -> str:
        return "higher" if self.higher_is_better else "lower"


@dataclass(frozen=True)
class Convention:
    name: str
    title: str
    source: str
    metrics: tuple[str, ...]  # the default list, in the order its reference reports them


METRICS: Registry[Metric] = Registry("metric", list_hint="see 'fusekit metrics --list'", group="fusekit.metrics")
CONVENTIONS: Registry[Convention] = Registry("metric convention")

CONVENTIONS.add("evaluator", Convention(
    "evaluator", "CDDFuse/FILM Python evaluator (utils/Evaluator.py)",
    "reference/METRICS.md; what FILM, TGIF and MTIF report",
    ("EN", "SD", "SF", "AG", "MI", "MSE", "CC", "PSNR", "SCD", "VIF", "Qabf", "SSIM"),
))
CONVENTIONS.add("vifb", Convention(
    "vifb", "VIFB MATLAB toolbox (xingchenzhang/VIFB metrics/)",
    "golden/metrics/VIFB_CONVENTIONS.md; what MGFusion (Qcv) and many older tables report",
    ("EN", "CE", "MI", "PSNR", "AG", "EI", "Qabf", "SD", "SF", "RMSE", "SSIM", "Qcb", "Qcv"),
))

_INF = math.inf
for _name, _title, _higher, _needs, _aliases in (
    ("EN", "entropy (bits)", True, NO_REFERENCE, ("entropy",)),
    ("SD", "standard deviation", True, NO_REFERENCE, ("STD",)),
    ("SF", "spatial frequency", True, NO_REFERENCE, ()),
    ("AG", "average gradient", True, NO_REFERENCE, ()),
    ("EI", "edge intensity", True, NO_REFERENCE, ()),
    ("MI", "mutual information (nats, summed over sources)", True, WITH_SOURCES, ()),
    ("MSE", "mean squared error", False, WITH_SOURCES, ()),
    ("RMSE", "VIFB root-mean-square error (not the usual RMSE)", False, WITH_SOURCES, ()),
    ("CE", "cross entropy (bits)", False, WITH_SOURCES, ()),
    ("CC", "correlation coefficient", True, WITH_SOURCES, ()),
    ("PSNR", "peak signal-to-noise ratio (dB)", True, WITH_SOURCES, ()),
    ("SCD", "sum of the correlations of differences", True, WITH_SOURCES, ()),
    ("VIF", "visual information fidelity, pixel domain (summed over sources)", True, WITH_SOURCES, ("VIFF", "VIFP")),
    ("Qabf", "Xydeas-Petrovic edge preservation", True, WITH_SOURCES, ("QAB/F",)),
    ("SSIM", "structural similarity (summed over sources)", True, WITH_SOURCES, ()),
    ("Qcb", "Chen-Blum perceptual quality", True, WITH_SOURCES, ()),
    ("Qcv", "Chen-Varshney perceptual distortion", False, WITH_SOURCES, ()),
):
    METRICS.add(_name, Metric(_name, _title, _higher, _needs, _aliases), aliases=_aliases)


def define(name: str, convention: str, summary: str, range: tuple[float, float] = (0.0, _INF)):
    """Decorator: register `fn(triple) -> float` as `convention`'s definition of metric `name`."""

    def decorate(fn: Callable) -> Callable:
        metric = METRICS.get(name)
        if convention in metric.definitions:
            raise ValueError(f"metric {name} defined twice for convention {convention}")
        metric.definitions[convention] = Definition(convention, fn, summary, range)
        return fn

    return decorate


def resolve(names: str | list[str] | tuple[str, ...] | None, convention: str) -> list[str]:
    """Canonical metric names for a request (a list, or ``"EN,SD"``); None means the convention's default list."""
    conv = CONVENTIONS.get(convention)
    if names is None:
        return list(conv.metrics)
    if isinstance(names, str):
        names = [part for part in names.split(",")]
    resolved: list[str] = []
    for raw in names:
        if not raw.strip():
            continue
        if raw not in METRICS:
            raise UsageError(f"unknown metric {raw.strip()!r}", f"{_suggest(raw, conv)}see 'fusekit metrics --list'")
        metric = METRICS.get(raw)
        if conv.name not in metric.definitions:
            others = [c for c in metric.definitions if c != conv.name]
            raise UsageError(
                f"metric {metric.name} is not part of the {conv.name} convention",
                f"use --convention {others[0]}, or one of: {', '.join(conv.metrics)}" if others else f"use one of: {', '.join(conv.metrics)}",
            )
        if metric.name not in resolved:
            resolved.append(metric.name)
    if not resolved:
        raise UsageError("no metric named", f"give names such as {','.join(conv.metrics[:3])}")
    return resolved


def _suggest(raw: str, conv: Convention) -> str:
    """A "did you mean" for a misspelt metric, in its registered spelling (the convention's own names first)."""
    spellings = {name.lower(): name for name in conv.metrics}
    for _, metric in METRICS.items():
        spellings.setdefault(metric.name.lower(), metric.name)
        for alias in metric.aliases:
            spellings.setdefault(alias.lower(), metric.name)
    close = difflib.get_close_matches(raw.strip().lower(), list(spellings), n=1, cutoff=0.5)
    return f"did you mean {spellings[close[0]]!r}? " if close else ""


def needs_sources(names: list[str]) -> bool:
    return any("a" in METRICS.get(name).needs for name in names)


def check_convention(name: str) -> str:
    return CONVENTIONS.canonical(name)
