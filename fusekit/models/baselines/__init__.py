"""Training-free fusion baselines, one or more per task: what a user would otherwise pick, and the bar every
learned model has to clear. Each module's `fuse_arrays` is named by its spec in `fusekit.models.specs` and
imported when the model runs; `DEFAULT` names the one per task that `fusekit fuse` and the benchmarks use as
"the baseline" (the best on the DEV set, see benchmarks/quality.py).
"""

from __future__ import annotations

DEFAULT = {"ivf": "gff", "mif": "gff", "mef": "mertens", "mff": "focus-map"}
