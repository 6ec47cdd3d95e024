"""The forward-pass timing that the model speed benchmarks share: each model against `film`, in the same run.

`clip_semantic_speed.py` and `text_guided_speed.py` differ only in the models they time and the guidance tensors
those models take; the measuring, the DEV-set pair and the table live here so both report the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fusekit.io.images import read_image, to_grey  # noqa: E402
from fusekit.models import FUSION_MODELS  # noqa: E402

PAIR = [REPO.parent / "shared" / "data" / "IVF" / "MSRS" / folder / "00040N.png" for folder in ("ir", "vi")]

# guidance(model name, image A [1, 1, H, W], device) -> the keyword tensors that model's forward takes
Guidance = Callable[[str, torch.Tensor, torch.device], dict]


def measure(name: str, a, b, repeats: int, device, guidance: Guidance) -> tuple[int, float, float]:
    """(parameters, best wall seconds, best process CPU seconds) of one forward pass."""
    torch.manual_seed(0)
    spec = FUSION_MODELS.get(name)
    model = spec.build(spec.config()).to(device).eval()
    extra = guidance(name, a, device)
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


def main(description: str, names: tuple[str, ...], guidance: Guidance) -> None:
    """Parse the benchmark's options, time `film` and `names` on the pair, print the table with ratios to film."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    a, b = (torch.from_numpy(to_grey(read_image(path)) / 255.0).float()[None, None].to(device) for path in PAIR)
    print(f"one {a.shape[-1]}x{a.shape[-2]} pair, {args.threads} threads, device {device}, best of {args.repeats}")
    rows = {name: measure(name, a, b, args.repeats, device, guidance) for name in ("film", *names)}
    _, film_wall, film_cpu = rows["film"]
    width = max(6, *(len(name) for name in rows))
    print(f"{'model':{width}} {'parameters':>11} {'wall s':>8} {'cpu s':>8} {'wall/film':>10} {'cpu/film':>9}")
    for name, (params, wall, cpu) in rows.items():
        print(f"{name:{width}} {params:11,d} {wall:8.2f} {cpu:8.2f} {wall / film_wall:10.2f} {cpu / film_cpu:9.2f}")
