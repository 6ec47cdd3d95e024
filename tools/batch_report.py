#!/usr/bin/env python3
"""Add up the `--summary` files of a sharded batch: one line per stage, every failed pair with its reason.

    python tools/batch_report.py OUT/summaries        # files named <stage>-<shard>.json (examples/slurm)

Why: each array task of a SLURM pipeline writes its own summary; the person who submitted the job wants one
answer — how many pairs went through each stage, which failed and why. Exits 1 when any pair failed, so a
final job step (examples/slurm/merge.sbatch) fails visibly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def collect(folder: Path) -> dict[str, dict]:
    """Per stage: summed counts, summed wall time, shards seen and the failures (name, reason, shard)."""
    stages: dict[str, dict] = defaultdict(lambda: {"processed": 0, "skipped": 0, "failures": [], "seconds": 0.0, "shards": 0})
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")):
        stage, _, shard = path.stem.rpartition("-")
        document = json.loads(path.read_text(encoding="utf-8"))
        totals = stages[stage or path.stem]
        totals["processed"] += document.get("processed", 0)
        totals["skipped"] += document.get("skipped", 0)
        totals["seconds"] += document.get("seconds", 0.0)
        totals["shards"] += 1
        totals["failures"] += [(failure["name"], failure["reason"], shard) for failure in document.get("failures", [])]
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder of <stage>-<shard>.json run summaries")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"batch_report: error: {folder} is not a folder (give the summaries folder)", file=sys.stderr)
        return 2
    stages = collect(folder)
    failed = False
    for stage, totals in stages.items():
        print(f"{stage}: {totals['processed']} processed, {totals['skipped']} skipped, {len(totals['failures'])} failed "
              f"({totals['shards']} shards, {totals['seconds']:.1f} s of work)")
        for name, reason, shard in totals["failures"]:
            failed = True
            print(f"  {name} (shard {shard}): {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
