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

import torch

from _against_film import main


def guidance(name: str, a: torch.Tensor, device) -> dict:
    generator = torch.Generator().manual_seed(0)
    if name == "film":
        return {"text": torch.randn(1, 64, 768, generator=generator).to(device)}
    if name == "mgfusion":
        return {key: torch.randn(1, 512, generator=generator).to(device) for key in ("image_embed_a", "image_embed_b")}
    return {"mask": (a > a.quantile(0.9)).float(), "text_semantics": torch.randn(1, 77, 768, generator=generator).to(device)}


if __name__ == "__main__":
    main(__doc__.splitlines()[0], ("mgfusion", "tesg"), guidance)
