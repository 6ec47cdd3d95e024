"""Fusion quality of the bundled `compact` model against the training-free baselines, per task, on real pairs.

For every pair of the DEV set (`shared/data`, 10 pairs per task) the script runs the whole offline pipeline the
way `fusekit fuse` does (stats describer → offline text encoder → `fuse` with the bundled weights; each baseline
through the same runner, so colour handling and 8-bit rounding are identical), then scores the written images
with `fusekit.metrics.compute` in the evaluator convention (EN, SD, SF, AG, VIF, Qabf; higher is better for
all six). Printed per task: the mean of each metric for `compact` and for every baseline of the task, and how many
of the six `compact` wins against the task's best baseline (`fusekit.models.baselines.DEFAULT`), and which
model the rule of `fusekit.app.defaults` makes the task's default: `compact` only if it beats that baseline on
VIF and on Qabf and on at least 4 of the 6, else the baseline (issue 15).

`--write-defaults` records the result in fusekit/weights/defaults.json, the table `fusekit fuse` reads to pick
its default model. Without it the script checks that table against this run and exits 1 when they disagree
(a stale table: the weights changed and the benchmark was not re-run).

    .venv/bin/python benchmarks/quality.py [--data ../shared/data] [--tasks ivf,mif,mef,mff]
                                          [--weights-dir DIR] [--json results.json] [--write-defaults]
    .venv/bin/python benchmarks/quality.py --write-defaults --from-json ivf.json mif.json ...

`--weights-dir` scores `compact_<task>.safetensors` from DIR instead of the bundled files (to judge a new
training run before bundling it; not with --write-defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METRICS = ("EN", "SD", "SF", "AG", "VIF", "Qabf")
FOLDERS = {"ivf": ("IVF", "ir", "vi"), "mif": ("MIF", "mri", "other"), "mef": ("MEF", "over", "under"),
           "mff": ("MFF", "a", "b")}


def pairs_of(data: Path, task: str):
    """Items (name = dataset-stem) of one task in the DEV layout <TASK>/<dataset>/<role>/<name>.png."""
    from fusekit.io.pairs import Item

    folder, role_a, role_b = FOLDERS[task]
    items = []
    for path_a in sorted((data / folder).glob(f"*/{role_a}/*.png")):
        path_b = path_a.parent.parent / role_b / path_a.name
        items.append(Item(f"{path_a.parent.parent.name}-{path_a.stem}", {"a": str(path_a), "b": str(path_b)}))
    return items


def write_text_features(items, task: str, folder: Path) -> None:
    """The offline guidance of every pair, as `fusekit describe | fusekit encode-text` would write it."""
    from fusekit.guidance.describe import describe_pair
    from fusekit.io.formats import write_safetensors
    from fusekit.guidance.text import encode_descriptions

    for item in items:
        document = describe_pair(item.a, item.b, task, backends=("stats",))
        tensors, metadata = encode_descriptions(document, "offline")
        write_safetensors(folder / f"{item.name}.safetensors", "text-features", tensors, metadata)


def score(model: str, task: str, items, text: Path, weights: str | None) -> dict[str, float]:
    """Mean metrics of one model over the items, fusing each pair exactly as `fusekit fuse` would."""
    from fusekit.io.images import read_image
    from fusekit.metrics import compute
    from fusekit.app.fuse import Fuser

    from fusekit.models import FUSION_MODELS

    needs_text = "text" in FUSION_MODELS.get(model).guidance
    fuser = Fuser(model, task, weights, text=str(text) if needs_text else None, device="cpu")
    rows = []
    for item in items:
        (fused,) = fuser.fuse([fuser.load(item)])
        rows.append(compute(fused, read_image(item.a), read_image(item.b), metrics=list(METRICS)))
    return {name: float(np.mean([row[name] for row in rows])) for name in METRICS}


def write_from_json(paths: list[Path]) -> int:
    """The defaults table from earlier runs' --json files (one run per task is enough), same rule as a live run."""
    from fusekit.app import defaults

    recorded = defaults.read_table()
    for path in paths:
        for task, result in json.loads(path.read_text()).items():
            baseline = result["best_baseline"]
            recorded[task] = defaults.table_entry(task, baseline, result["means"]["compact"], result["means"][baseline], result["pairs"])
            print(f"{task}: default {recorded[task]['default']} (compact wins {', '.join(recorded[task]['compact_wins']) or 'none'})")
    path = REPO / "fusekit" / "weights" / defaults.TABLE
    path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("FUSEKIT_SHARED", REPO.parent / "shared"))
    parser.add_argument("--data", type=Path, default=shared / "data")
    parser.add_argument("--tasks", default="ivf,mif,mef,mff")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--write-defaults", action="store_true", help="record the defaults table fuse reads")
    parser.add_argument("--from-json", type=Path, nargs="*", default=None,
                        help="with --write-defaults: take the means from earlier --json outputs instead of re-running")
    args = parser.parse_args()
    if args.from_json:
        return write_from_json(args.from_json)
    if args.write_defaults and args.weights_dir:
        parser.error("--write-defaults records the bundled weights' result; drop --weights-dir")

    import torch

    from fusekit.app import defaults
    from fusekit.models import FUSION_MODELS
    from fusekit.models.baselines import DEFAULT

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    results, recorded, stale = {}, defaults.read_table(), []
    with tempfile.TemporaryDirectory() as scratch:
        for task in args.tasks.split(","):
            started = time.perf_counter()
            items = pairs_of(args.data, task)
            text = Path(scratch) / task
            text.mkdir()
            write_text_features(items, task, text)
            weights = str(args.weights_dir / f"compact_{task}.safetensors") if args.weights_dir else None
            baselines = [DEFAULT[task]] + [name for name, spec in FUSION_MODELS.items()
                                           if spec.kind == "training-free" and task in spec.tasks
                                           and name != DEFAULT[task]]
            table = {"compact": score("compact", task, items, text, weights)}
            for name in baselines:
                table[name] = score(name, task, items, text, None)
            entry = defaults.table_entry(task, DEFAULT[task], table["compact"], table[DEFAULT[task]], len(items))
            wins = entry["compact_wins"]
            if (recorded.get(task) or {}).get("default") != entry["default"]:
                stale.append(task)
            results[task] = {"pairs": len(items), "means": table, "best_baseline": DEFAULT[task], "compact_wins": wins,
                             "default": entry["default"]}
            if args.write_defaults:
                recorded[task] = entry
            seconds = time.perf_counter() - started
            print(f"\n{task.upper()} ({len(items)} pairs, {seconds:.0f} s), evaluator convention, higher is better")
            print(f"{'model':<12}" + "".join(f"{name:>9}" for name in METRICS))
            for model, means in table.items():
                print(f"{model:<12}" + "".join(f"{means[name]:>9.4f}" for name in METRICS))
            print(f"compact beats {DEFAULT[task]} on {len(wins)}/6: {', '.join(wins) or 'none'}; "
                  f"default for {task}: {entry['default']} (rule: VIF and Qabf and >= 4 of 6)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.write_defaults:
        path = REPO / "fusekit" / "weights" / defaults.TABLE
        path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        print(f"\nwrote {path.relative_to(REPO)}")
        return 0
    if stale:
        print(f"\nfusekit/weights/{defaults.TABLE} disagrees with this run for {', '.join(stale)}: "
              "re-run with --write-defaults", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
