"""`fusekit report`: every method on a test set, in a paper's metric convention, as the tables and figures of a
paper's comparison section, beside the numbers the papers themselves report (docs/REPORT.md).

`Settings` says what to compare and where to write; `run` fuses (or reads) each method's results, measures them,
and writes ``report.md``, ``report.tex``, ``report.csv``, ``report.html`` and ``figures/`` into the output folder.
Fused images and per-pair metrics are kept in ``fused/`` and ``metrics/`` there, so a rerun reuses them and
``--shard K/N`` runs split the work (a final run without a shard writes the tables).
"""

from .methods import FolderMethod, ModelMethod, parse_methods
from .runner import Outcome, Settings, run

__all__ = ["Settings", "Outcome", "run", "parse_methods", "ModelMethod", "FolderMethod"]
