"""Text encoders: descriptions in words → token features that guide fusion (FILM, MTIF, TGIF).

`encode_descriptions(doc, encoder="offline")` → (tensors, metadata) for a text-features file. Encoders live in
`TEXT_ENCODERS`: ``offline`` (default, no weights, 768-d), ``blip2`` (BLIP-2 Q-Former text model, as FILM) and
``clip`` (CLIP text model) and ``hf`` (any Hugging Face encoder folder).
"""

from __future__ import annotations

from . import models, offline  # noqa: F401  (register the encoders; model weights load lazily)
from .base import TEXT_ENCODERS, TextEncoder, TextOptions
from .features import encode_descriptions, get_encoder, image_text

__all__ = ["TEXT_ENCODERS", "TextEncoder", "TextOptions", "encode_descriptions", "get_encoder", "image_text"]
