"""Frozen image encoders for guidance: `encode_images(paths, encoder="clip")` → per-image embeddings.

Encoders live in `IMAGE_ENCODERS` (``clip``: CLIPVisionModelWithProjection image embeds, as MGFusion uses).
"""

from __future__ import annotations

from . import clip  # noqa: F401  (registers the encoder)
from .base import IMAGE_ENCODERS, ImageEncoder, ImageOptions
from .features import encode_images, get_image_encoder, image_features

__all__ = ["IMAGE_ENCODERS", "ImageEncoder", "ImageOptions", "encode_images", "get_image_encoder", "image_features"]
