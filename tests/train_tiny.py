"""A tiny text-guided model registered only for the training tests, and helpers to build real training data.

Importing this module registers ``tiny-test`` (a few hundred parameters, fast on a shared CPU) so the trainer's
mechanics (resume, signals, DDP) can be tested in seconds. Run as a script it is the `fusekit` CLI with that model
registered: ``python tests/train_tiny.py train --model tiny-test ...`` (also under torchrun).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fusekit.io.formats import write_safetensors  # noqa: E402
from fusekit.models import FUSION_MODELS, FusionModelSpec, register  # noqa: E402

TRAIN = Path(os.environ.get("FUSEKIT_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "train"
TEXT_DIM = 16


@dataclass
class TinyConfig:
    channels: int = 6
    text_dim: int = TEXT_DIM


class TinyFusion(nn.Module):
    """conv(A, B) → ReLU → (+ projected mean text token) → conv → sigmoid."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.encode = nn.Conv2d(2, config.channels, 3, padding=1)
        self.text = nn.Linear(config.text_dim, config.channels)
        self.decode = nn.Conv2d(config.channels, 1, 3, padding=1)

    def forward(self, a, b, text=None):
        x = torch.relu(self.encode(torch.cat([a, b], dim=1)))
        if text is not None:
            x = x + self.text(text.mean(dim=1))[:, :, None, None]
        return torch.sigmoid(self.decode(x))


if "tiny-test" not in FUSION_MODELS:
    register(FusionModelSpec(
        name="tiny-test", summary="test-only tiny text-guided model", kind="learned",
        tasks=("ivf", "mif", "mef", "mff"), build=TinyFusion, config=TinyConfig, guidance=("text",),
        text_encoder="test", text_dim=TEXT_DIM, default_loss="film", train_preset="default",
    ))


def ivf_manifest(folder: Path, count: int = 8, dim: int = TEXT_DIM, base: Path | None = None) -> Path:
    """A manifest of the first `count` real IVF pairs under `base` (default: the RoadScene training pairs) with a
    text-features file each (random tokens: the tests check the trainer, not what the text says)."""
    base = base or TRAIN / "IVF" / "RoadScene"
    names = sorted(p.stem for p in (base / "ir").glob("*.png"))[:count]
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, name in enumerate(names):
        rng = np.random.default_rng(index)
        text = torch.from_numpy(rng.standard_normal((5, dim)).astype(np.float32))
        path = folder / f"{name}.safetensors"
        write_safetensors(path, "text-features", {"text": text}, {"encoder": "test", "dim": str(dim), "task": "ivf"})
        lines.append(json.dumps({"name": name, "a": str(base / "ir" / f"{name}.png"), "b": str(base / "vi" / f"{name}.png"), "text": str(path)}))
    manifest = folder / "pairs.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


if __name__ == "__main__":
    from fusekit.cli import main

    sys.exit(main(sys.argv[1:]))
