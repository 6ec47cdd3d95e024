"""Training demo: a short CPU run of `fusekit train` whose validation metrics improve over the initial weights.

Trains the compact model on crops of shared/train for one task, with text guidance computed on the fly (``stats``
describer + ``offline`` encoder), and validates on the DEV pairs of shared/data before training and after every
epoch. Prints the validation metrics of the initial weights and of the last epoch, side by side. With CUDA
available it also trains FILM (the released architecture, FILM's preset and 288 × 384 training size) for a few
hundred steps and prints its throughput in pairs/s and the validation metrics reached.

    .venv/bin/python benchmarks/train_demo.py [--task ivf] [--epochs 4] [--keep-run DIR]

Everything runs through the real CLI (`fusekit.cli.main`), so the numbers are what a user would get.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

HIGHER_IS_BETTER = ("EN", "SD", "SF", "AG", "VIF", "Qabf")


def rows(out: Path, kind: str) -> list[dict]:
    return [row for row in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if row["kind"] == kind]


def show(title: str, before: dict, after: dict) -> None:
    print(f"\n{title}")
    print(f"{'metric':<8}{'initial':>12}{'trained':>12}{'change':>10}")
    for name in ["loss", *HIGHER_IS_BETTER]:
        x = before["loss"] if name == "loss" else before["metrics"][name]
        y = after["loss"] if name == "loss" else after["metrics"][name]
        print(f"{name:<8}{x:>12.4f}{y:>12.4f}{(y - x) / abs(x) * 100 if x else 0:>9.1f}%")


def run(argv: list[str]) -> None:
    from fusekit.cli import main

    code = main(argv)
    if code:
        raise SystemExit(f"fusekit {' '.join(argv)} exited {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="ivf")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--keep-run", help="write the run here instead of a temporary folder")
    args = parser.parse_args()
    import torch

    folder = Path(args.keep_run) if args.keep_run else Path(tempfile.mkdtemp(prefix="fusekit-train-demo-"))
    out = folder / f"compact-{args.task}"
    task_dir = args.task.upper()
    started = time.perf_counter()
    run(["train", "--model", "compact", "--task", args.task, "--data", str(SHARED / "train" / task_dir),
         "--val", str(SHARED / "data" / task_dir), "--val-crop", "256", "--describer", "stats", "--encoder", "offline",
         "--crop", "96", "--batch-size", "8", "--lr", "1e-3", "--epochs", str(args.epochs), "--device", "cpu",
         "--cache", str(folder / "guidance-cache"), "--out", str(out)])
    elapsed = time.perf_counter() - started
    vals = rows(out, "val")
    train_rows = rows(out, "train")
    print(f"compact on {task_dir}: {train_rows[-1]['step']} steps in {elapsed:.0f} s on the CPU "
          f"(incl. loading {json.loads((out / 'run.json').read_text())['pairs']} pairs and computing their guidance), "
          f"last epoch {train_rows[-1]['pairs_per_s']:.1f} pairs/s")
    show(f"validation on shared/data/{task_dir} ({vals[0]['pairs']} pairs, 256 px centre crops, evaluator convention)", vals[0], vals[-1])

    if not torch.cuda.is_available():
        print("\nFILM on GPU: skipped (no CUDA device here; no GPU was lent to this run)")
        return
    film = folder / f"film-{args.task}"
    run(["train", "--model", "film", "--task", args.task, "--data", str(SHARED / "train" / task_dir),
         "--val", str(SHARED / "data" / task_dir), "--describer", "stats", "--encoder", "offline", "--preset", "film",
         "--batch-size", "8", "--epochs", "20", "--precision", "bf16", "--device", "cuda", "--log-every", "5",
         "--cache", str(folder / "guidance-cache"), "--out", str(film)])
    rates = [row["pairs_per_s"] for row in rows(film, "train")]
    print(f"\nFILM on {torch.cuda.get_device_name()}: {max(rates):.1f} pairs/s (bf16, batch 8, 288 x 384)")
    film_vals = rows(film, "val")
    show(f"FILM validation on shared/data/{task_dir}", film_vals[0], film_vals[-1])


if __name__ == "__main__":
    main()
