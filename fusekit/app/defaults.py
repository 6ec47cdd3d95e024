"""Which model `fusekit fuse` runs without --model: the best thing fusekit has for the task, decided by data.

The rule (issue 15): the bundled `compact` model is a task's default only if, on the DEV set, it beats the task's
best training-free baseline (`fusekit.models.baselines.DEFAULT`) on VIF AND on Qabf AND on at least 4 of the six
metrics (EN, SD, SF, AG, VIF, Qabf; higher is better for all). Otherwise the baseline is the default and the
bundled model stays one `--model compact` away. The measured means live in `fusekit/weights/defaults.json`, which
`benchmarks/quality.py --write-defaults` writes from its run; a task missing from it falls back to the baseline,
so a model never becomes the default without a measurement behind it.
"""

from __future__ import annotations

import json
from importlib import resources

METRICS = ("EN", "SD", "SF", "AG", "VIF", "Qabf")
REQUIRED = ("VIF", "Qabf")  # fidelity metrics a default must win; sharpness alone (SF, AG) can be bought
MIN_WINS = 4
TABLE = "defaults.json"


def wins(learned: dict, baseline: dict) -> list[str]:
    """The metrics on which `learned` beats `baseline` (means, higher is better)."""
    return [name for name in METRICS if learned[name] > baseline[name]]


def earns_default(learned: dict, baseline: dict) -> bool:
    """The rule: wins on every REQUIRED metric and on at least MIN_WINS of the six."""
    won = wins(learned, baseline)
    return all(name in won for name in REQUIRED) and len(won) >= MIN_WINS


def table_entry(task: str, baseline: str, learned: dict, baseline_means: dict, pairs: int) -> dict:
    """One task's row of defaults.json: the measurements and the model they make the default."""
    return {"default": "compact" if earns_default(learned, baseline_means) else baseline, "baseline": baseline,
            "pairs": pairs, "compact": learned, baseline: baseline_means, "compact_wins": wins(learned, baseline_means)}


def read_table() -> dict:
    path = resources.files("fusekit") / "weights" / TABLE
    return json.loads(path.read_text()) if path.is_file() else {}


def default_model(task: str) -> str | None:
    """The recorded default for `task` ("compact" or its baseline), or None when the task has no measurement."""
    entry = read_table().get(task)
    return entry.get("default") if isinstance(entry, dict) else None
