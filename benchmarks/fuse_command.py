"""The whole `fusekit fuse` command for one 640 x 480 pair against its forward pass alone, measured in the same run.

A user types `fusekit fuse ir.png vi.png --task ivf -o fused.png` and waits for the whole command: starting Python
and importing torch, loading the bundled compact weights, decoding the pair, describing it (`stats`) and encoding
the description (`offline`), the forward pass, and writing the PNG. README quotes the forward pass; this script
prints both and their ratio (command / forward pass), medians of `--repeats` runs, so the README can state both.

    .venv/bin/python benchmarks/fuse_command.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PAIR = [REPO.parent / "shared" / "data" / "IVF" / "MSRS" / folder / "00040N.png" for folder in ("ir", "vi")]


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def command_seconds(repeats: int, threads: int) -> float:
    """Median wall time of the real CLI, from process start to exit (output PNG written)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(repeats):
            out = Path(folder) / f"fused{index}.png"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fusekit", "fuse", *map(str, PAIR), "--task", "ivf", "-o", str(out), "-q"],
                           check=True, env=env)
            times.append(time.perf_counter() - start)
    return median(times)


def forward_seconds(repeats: int, threads: int) -> float:
    """Median wall time of the compact model's forward pass alone on the same pair, weights and guidance."""
    import torch

    from fusekit.app.fuse import Fuser

    torch.set_num_threads(threads)
    fuser = Fuser(None, "ivf")
    from fusekit.io.pairs import select

    pair = fuser.load(select([str(p) for p in PAIR]).items[0])
    fuser.fuse([pair])  # warm-up
    a = torch.from_numpy(pair.a)[None, None]
    b = torch.from_numpy(pair.b)[None, None]
    guidance = {name: tensor[None] for name, tensor in pair.guidance.items()}
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            fuser.module(a, b, **guidance)
            times.append(time.perf_counter() - start)
    return median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    forward = forward_seconds(args.repeats, args.threads)
    whole = command_seconds(args.repeats, args.threads)
    print(f"pair: {PAIR[0].parent.parent.name}/{PAIR[0].name} (640x480), compact, {args.threads} threads, median of {args.repeats}")
    print(f"forward pass        {forward:7.2f} s")
    print(f"whole fuse command  {whole:7.2f} s")
    print(f"ratio command / forward pass: {whole / forward:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
