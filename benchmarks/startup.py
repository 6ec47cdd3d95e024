"""Whole-process time of the light commands against importing numpy and scipy.ndimage, in the same run.

A shell loop or Makefile over single pairs pays a command's start-up once per pair, so the bar is what any
numpy/scipy tool pays just to start: `python -c "import numpy, scipy.ndimage"`. Each command is run REPEATS times,
interleaved with the baseline (so load on the machine hits both alike); the table gives the median and best wall
times and the ratio of medians to the baseline's. `--compare PYTHON` also times the same commands with another
installation's interpreter (e.g. /work/main/.venv/bin/python, the code before the torch-free start) and prints
that ratio too.

Usage: python benchmarks/startup.py [--repeats 7] [--compare /path/to/other/venv/bin/python]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "IVF" / "MSRS"
A, B = (str(DATA / folder / "00040N.png") for folder in ("ir", "vi"))


def commands(work: Path) -> dict[str, list[str]]:
    """Label → arguments after `python`; the fused image and descriptions they read are made first."""
    fused, described = work / "fused.png", work / "pair.json"
    return {
        "python -c 'import numpy, scipy.ndimage'": ["-c", "import numpy, scipy.ndimage"],
        "fusekit metrics F A B": ["-m", "fusekit", "metrics", str(fused), A, B],
        "fusekit fuse A B --model gff": ["-m", "fusekit", "fuse", A, B, "--task", "ivf", "--model", "gff", "-o", str(work / "out.png")],
        "fusekit models": ["-m", "fusekit", "models"],
        "fusekit encode-text --encoder offline": ["-m", "fusekit", "encode-text", str(described), "--encoder", "offline",
                                                  "-o", str(work / "t.safetensors")],
        "python -c 'import torch' (for scale)": ["-c", "import torch"],
    }


def run(python: str, args: list[str], work: Path) -> float:
    """Seconds of one process, started in `work` so `-m fusekit` imports the interpreter's installation, not the
    checkout in the current folder."""
    start = time.perf_counter()
    subprocess.run([python, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    return time.perf_counter() - start


def prepare(python: str, work: Path) -> None:
    subprocess.run([python, "-m", "fusekit", "fuse", A, B, "--task", "ivf", "--model", "gff", "-o", str(work / "fused.png")], check=True, cwd=work)
    described = subprocess.run([python, "-m", "fusekit", "describe", A, B, "--task", "ivf", "--no-cache"], check=True, capture_output=True, cwd=work)
    (work / "pair.json").write_bytes(described.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compare", help="another installation's python to time the same commands with")
    options = parser.parse_args()
    pythons = {"this": sys.executable} | ({"compare": options.compare} if options.compare else {})
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(sys.executable, work)
        table = commands(work)
        times: dict[tuple[str, str], list[float]] = {(who, label): [] for who in pythons for label in table}
        for who, python in pythons.items():  # warm the file cache once
            for args in table.values():
                run(python, args, work)
        for _ in range(options.repeats):
            for label, args in table.items():
                for who, python in pythons.items():
                    if who == "this" or label.startswith("fusekit"):
                        times[who, label].append(run(python, args, work))
    baseline = statistics.median(times["this", next(iter(table))])
    header = f"{'command':44s} {'median s':>9s} {'best s':>8s} {'× numpy+scipy':>14s}"
    if options.compare:
        header += f" {'compare median s':>17s} {'compare / this':>15s}"
    print(f"whole-process wall time, {options.repeats} interleaved runs each, {Path(A).name} (640 x 480)")
    print(header)
    for label in table:
        ours = times["this", label]
        line = f"{label:44s} {statistics.median(ours):9.3f} {min(ours):8.3f} {statistics.median(ours) / baseline:14.2f}"
        if options.compare and times["compare", label]:
            other = statistics.median(times["compare", label])
            line += f" {other:17.3f} {other / statistics.median(ours):15.2f}"
        print(line)


if __name__ == "__main__":
    main()
