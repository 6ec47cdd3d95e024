"""MGFusion and TeSG (paper-default configs) against fusekit's `film` on one 640 × 480 pair, in the same run.

Prints each model's parameter count, the wall time and the process CPU time of one forward pass (CPU time is
steadier than wall time on a shared machine), and both as a ratio to `film`, the baseline measured in the same
run. Weights are random (speed does not depend on them); the images are a real DEV-set pair (MSRS 00040N,
640 × 480). Guidance tensors have the shapes the models get in use: FILM 64 BLIP-2 tokens (768-d); MGFusion two
512-d CLIP image embeddings; TeSG a binary mask (the brightest infrared pixels) and 77 Stable Diffusion text tokens
(768-d). TeSG's semantic information generator (BLIP + Stable Diffusion) is not timed: it runs once per pair,
before fusion, with `fusekit semantics`.

    .venv/bin/python benchmarks/clip_semantic_speed.py [--threads 2] [--repeats 1] [--device cpu]
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


def guidance(name: str, a: torch.Tensor, device) -> dict:
    generator = torch.Generator().manual_seed(0)
    if name == "film":
        return {"text": torch.randn(1, 64, 768, generator=generator).to(device)}
    if name == "mgfusion":
        return {key: torch.randn(1, 512, generator=generator).to(device) for key in ("image_embed_a", "image_embed_b")}
    return {"mask": (a > a.quantile(0.9)).float(), "text_semantics": torch.randn(1, 77, 768, generator=generator).to(device)}


def measure(name: str, a, b, repeats: int, device) -> tuple[int, float, float]:
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
    rows = {name: measure(name, a, b, args.repeats, device) for name in ("film", "mgfusion", "tesg")}
    _, film_wall, film_cpu = rows["film"]
    print(f"{'model':8} {'parameters':>11} {'wall s':>8} {'cpu s':>8} {'wall/film':>10} {'cpu/film':>9}")
    for name, (params, wall, cpu) in rows.items():
        print(f"{name:8} {params:11,d} {wall:8.2f} {cpu:8.2f} {wall / film_wall:10.2f} {cpu / film_cpu:9.2f}")


if __name__ == "__main__":
    main()
