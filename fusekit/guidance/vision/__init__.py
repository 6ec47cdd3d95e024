"""Frozen image encoders for guidance: `encode_images(paths, encoder="clip")` → per-image embeddings.

Encoders live in `IMAGE_ENCODERS` (`base.py`; `fusekit encode-image --list`: ``clip``, CLIPVisionModelWithProjection
image embeds, as MGFusion uses, plus those of installed plugins). Importing this package imports no encoder.
"""

from __future__ import annotations

from ...registry import lazy_exports
from .base import IMAGE_ENCODERS, ImageEncoder, ImageOptions

__getattr__ = lazy_exports(__name__, {"encode_images": "features", "get_image_encoder": "features", "image_features": "features",
                                              "image_features_many": "features"})

__all__ = ["IMAGE_ENCODERS", "ImageEncoder", "ImageOptions", "encode_images", "get_image_encoder", "image_features", "image_features_many"]
