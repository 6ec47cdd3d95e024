"""`compact` against `film` on the CPU at 640 x 480: one forward pass each, measured in the same run.

Both networks are built with their default configs (the bundled compact architecture; FILM as released) and run
under `torch.inference_mode` on one pair of 640 x 480 grey images with the same [1, L, 768] text features (random
values: speed does not depend on them). Reported: wall time and the process's CPU time per forward pass (CPU time
is the steadier measure on a shared machine) and the ratios film / compact. The claim in docs/MODELS.md is a
ratio of at least 4; the script exits 1 below it.

    .venv/bin/python benchmarks/compact_speed.py [--size 640x480] [--tokens 64] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(model, inputs, repeats: int, warm_up: bool) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of `repeats` forward passes, after a warm-up pass if asked."""
    walls, cpus = [], []
    with torch.inference_mode():
        if warm_up:
            model(*inputs[:2], text=inputs[2])
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            model(*inputs[:2], text=inputs[2])
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    parser.add_argument("--tokens", type=int, default=64, help="text tokens L (both images of the pair)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of compact (film: 1, it is slow)")
    args = parser.parse_args()

    from fusekit.models import FUSION_MODELS

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    generator = torch.Generator().manual_seed(0)
    image = (1, 1, height, width)
    inputs = (torch.rand(image, generator=generator), torch.rand(image, generator=generator),
              torch.randn(1, args.tokens, 768, generator=generator))
    results = {}
    for name, repeats in (("compact", args.repeats), ("film", 1)):
        spec = FUSION_MODELS.get(name)
        model = spec.build(spec.config()).eval()
        parameters = sum(p.numel() for p in model.parameters())
        results[name] = timed(model, inputs, repeats, warm_up=name == "compact")  # film's own time dwarfs warm-up
        print(f"{name:<8} {parameters:>10,} parameters  wall {results[name][0]:8.3f} s  cpu {results[name][1]:8.3f} s"
              f"  ({width}x{height}, {args.threads} threads, median of {repeats})")
    wall_ratio = results["film"][0] / results["compact"][0]
    cpu_ratio = results["film"][1] / results["compact"][1]
    print(f"film / compact: wall {wall_ratio:.1f}x, cpu {cpu_ratio:.1f}x (claim: >= 4x)")
    return 0 if min(wall_ratio, cpu_ratio) >= 4 else 1


if __name__ == "__main__":
    sys.exit(main())
