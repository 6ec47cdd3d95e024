"""TGIF and MTIF (paper-default configs) against fusekit's `film` on one 640 × 480 pair, in the same run.

Prints each model's parameter count, the wall time and the process CPU time of one forward pass (CPU time is
steadier than wall time on a shared machine), and both as a ratio to `film`, the baseline measured in the same
run. Weights are random (speed does not depend on them); the images are a real DEV-set pair (MSRS 00040N,
640 × 480) and the text features random tensors of FILM's shape (BLIP-2, 32 tokens per image, 768-d).

    .venv/bin/python benchmarks/text_guided_speed.py [--threads 2] [--repeats 1] [--device cpu]
"""

from __future__ import annotations

import torch

from _against_film import main

TOKENS = 64  # 32 Q-Former tokens per image, A's then B's


def guidance(name: str, a: torch.Tensor, device) -> dict:
    """Random text features of each model's shape (`a` is not needed: no guidance here comes from the image)."""
    generator = torch.Generator().manual_seed(0)
    names = {"film": ("text",), "tgif": ("text",),
             "mtif": ("text_detail", "text_structure", "text_semantic")}[name]
    return {key: torch.randn(1, TOKENS, 768, generator=generator).to(device) for key in names}


if __name__ == "__main__":
    main(__doc__.splitlines()[0], ("tgif", "mtif"), guidance)
