"""TGIF and MTIF (paper-default configs) against fusekit's `film` on one 640 × 480 pair, in the same run.

Prints each model's parameter count, the wall time and the process CPU time of one forward pass (CPU time is
steadier than wall time on a shared machine), and both as a ratio to `film`, the baseline measured in the same
run. Weights are random (speed does not depend on them); the images are a real DEV-set pair (MSRS 00040N,
640 × 480) and the text features random tensors of FILM's shape (BLIP-2, 32 tokens per image, 768-d).

    .venv/bin/python benchmarks/text_guided_speed.py [--threads 2] [--repeats 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fusekit.io.images import read_image, to_grey  # noqa: E402
from fusekit.models import FUSION_MODELS  # noqa: E402

PAIR = [REPO.parent / "shared" / "data" / "IVF" / "MSRS" / folder / "00040N.png" for folder in ("ir", "vi")]
TOKENS = 64  # 32 Q-Former tokens per image, A's then B's


def guidance(name: str, device) -> dict:
    generator = torch.Generator().manual_seed(0)
    names = {"film": ("text",), "tgif": ("text",),
             "mtif": ("text_detail", "text_structure", "text_semantic")}[name]
    return {key: torch.randn(1, TOKENS, 768, generator=generator).to(device) for key in names}


def measure(name: str, a, b, repeats: int, device) -> tuple[int, float, float]:
    """(parameters, best wall seconds, best process CPU seconds) of one forward pass."""
    torch.manual_seed(0)
    spec = FUSION_MODELS.get(name)
    model = spec.build(spec.config()).to(device).eval()
    extra = guidance(name, device)
    best_wall = best_cpu = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            model(a, b, **extra)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
    return sum(p.numel() for p in model.parameters()), best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    a, b = (torch.from_numpy(to_grey(read_image(path)) / 255.0).float()[None, None].to(device) for path in PAIR)
    print(f"one {a.shape[-1]}x{a.shape[-2]} pair, {args.threads} threads, device {device}, best of {args.repeats}")
    rows = {name: measure(name, a, b, args.repeats, device) for name in ("film", "tgif", "mtif")}
    _, film_wall, film_cpu = rows["film"]
    print(f"{'model':6} {'parameters':>11} {'wall s':>8} {'cpu s':>8} {'wall/film':>10} {'cpu/film':>9}")
    for name, (params, wall, cpu) in rows.items():
        print(f"{name:6} {params:11,d} {wall:8.2f} {cpu:8.2f} {wall / film_wall:10.2f} {cpu / film_cpu:9.2f}")


if __name__ == "__main__":
    main()
