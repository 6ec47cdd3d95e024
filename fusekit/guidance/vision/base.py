"""Image encoders: frozen per-image embeddings used as guidance (MGFusion's CLIP features)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ...registry import Registry
from ..encoder import Encoder

# One line per encoder: name, class (imported when the encoder is used), aliases, and what `encode-image --list`
# and `--help` say about it. Other packages add encoders through the ``fusekit.image_encoders`` entry-point group.
IMAGE_ENCODERS: Registry = Registry("image encoder", "known: {known} (fusekit encode-image --list)", group="fusekit.image_encoders")
IMAGE_ENCODERS.add_lazy("clip", "fusekit.guidance.vision.clip:ClipImageEncoder", model="openai/clip-vit-base-patch32",
                        summary="CLIPVisionModelWithProjection's projected image embeds, as MGFusion uses")


@dataclass
class ImageOptions:
    device: str = "auto"
    precision: str = "fp32"
    model_path: str | None = None
    model_id: str | None = None


class ImageEncoder(Encoder):
    """Base: subclasses set `name`, `default_model`, implement `_load` (→ whatever `embed` needs) and `embed`."""

    @functools.cached_property
    def model(self):
        return self._load()

    def _load(self):
        raise NotImplementedError

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def embed(self, images: list):
        """float32 [N, dim] for N uint8 RGB arrays."""
        raise NotImplementedError
