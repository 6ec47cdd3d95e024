"""Image fusion metrics, number for number as the field's two reference implementations compute them.

``compute(fused, a, b, metrics=None, convention="evaluator")`` → ``{name: value}``; ``METRICS`` is the registry
(metadata: higher/lower is better, inputs needed, aliases, per-convention definitions), ``CONVENTIONS`` the two
conventions (``evaluator``: the CDDFuse/FILM evaluator; ``vifb``: the VIFB MATLAB toolbox). See docs/METRICS.md.
"""

from .compute import compute, is_missing
from .registry import CONVENTIONS, METRICS, Convention, Definition, Metric, resolve

__all__ = ["compute", "is_missing", "METRICS", "CONVENTIONS", "Metric", "Definition", "Convention", "resolve"]
