"""The fusion-model registry: every model `fuse`, `train` and `models` know, with what it needs.

A model is one module (the network or the fusion function) plus one `FusionModelSpec` registered in
`fusekit.models.specs`, or by a third-party package through the ``fusekit.models`` entry-point group. A spec is
plain data: its `build`, `config` and `fuse_arrays` may name their object as ``"package.module:attribute"``, which
is imported on first use, so listing models and running a training-free one never import torch. Two kinds:

- ``learned``: `build(config)` returns a torch module whose ``forward(a, b, **guidance)`` takes grey images
  ``a``, ``b`` of shape [B, 1, H, W] in [0, 1] (A first, in the task's input order) plus the guidance tensors named
  in `guidance` (e.g. ``text`` [B, L, D]) and returns the fused grey image [B, 1, H, W] in [0, 1] (or the raw
  output the model defines; see its docs). `config` is a dataclass of the architecture's settings.
- ``training-free``: `fuse_arrays(a, b, task)` takes float32 arrays in [0, 1], [H, W] or [H, W, 3] when
  `colour == "rgb"`, and returns the fused array of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..registry import LazyObject, Registry

# What a model may need besides the two images, and the command that makes it.
GUIDANCE_SOURCES = {
    "text": "text features from `fusekit encode-text` ([L, D] pair tokens)",
    "text_levels": "per-level text features (detail, structure, semantic) from `fusekit encode-text`",
    "image_embeds": "image embeddings from `fusekit encode-image`",
    "semantics": "object mask + text semantics from TeSG's semantic information generator",
}


@dataclass(frozen=True)
class FusionModelSpec:
    name: str
    summary: str
    kind: str  # "learned" or "training-free"
    tasks: tuple[str, ...]
    paper: str = ""
    # learned models
    build: Callable[[Any], Any] | str | None = None  # or "module:Class", imported on first use
    config: type | str | None = None
    guidance: tuple[str, ...] = ()
    describer: str | None = None  # describer backends of the paper's text recipe (with `text_encoder`), e.g. "stats"
    text_encoder: str | None = None  # encoder id whose features the default weights expect
    text_dim: int | None = None
    image_encoder: str | None = None
    image_dim: int | None = None
    default_loss: str | None = None  # name in fusekit.models.losses.LOSSES
    train_preset: str | None = None  # name of the paper's optimiser/schedule preset
    tileable: bool = False  # local (fully convolutional, grey) model: `fuse` may run large images in tiles
    train_augment: str | None = None  # training-time augmentation the paper uses (e.g. MTIF enrichment); {task} → the task
    bundled: dict[str, str] = field(default_factory=dict)  # task → file name in fusekit/weights/
    # training-free models
    fuse_arrays: Callable[..., Any] | str | None = None
    colour: str = "luma"  # "luma": fuse grey/Y and re-attach chroma; "rgb": the method fuses colour itself

    def __post_init__(self):
        for name in ("build", "config", "fuse_arrays"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, LazyObject(value))

    def bundled_weights(self, task: str):
        """Path of the weights shipped for `task`, or None."""
        name = self.bundled.get(task)
        if not name:
            return None
        path = resources.files("fusekit") / "weights" / name
        return path if path.is_file() else None

    def describe(self) -> dict:
        """The row `fusekit models --json` prints."""
        return {
            "name": self.name,
            "kind": self.kind,
            "tasks": list(self.tasks),
            "summary": self.summary,
            "needs": list(self.guidance),
            "describer": self.describer,
            "text_encoder": self.text_encoder,
            "text_dim": self.text_dim,
            "image_encoder": self.image_encoder,
            "image_dim": self.image_dim,
            "bundled_weights": sorted(task for task in self.tasks if self.bundled_weights(task) is not None),
            "default_loss": self.default_loss,
            "paper": self.paper,
        }


FUSION_MODELS: Registry[FusionModelSpec] = Registry("fusion model", "list them with 'fusekit models'", group="fusekit.models")


def register(spec: FusionModelSpec) -> FusionModelSpec:
    return FUSION_MODELS.add(spec.name, spec)
