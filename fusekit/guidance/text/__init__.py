"""Text encoders: descriptions in words → token features that guide fusion (FILM, MTIF, TGIF).

`encode_descriptions(doc, encoder="offline")` → (tensors, metadata) for a text-features file. Encoders live in
`TEXT_ENCODERS` (`base.py`; `fusekit encode-text --list`): ``offline`` (default, no weights, 768-d), ``blip2``
(BLIP-2 Q-Former text model, as FILM) ``clip`` (CLIP text model) and ``hf`` (any Hugging Face encoder folder), plus those of installed plugins. Importing
this package imports no encoder: each is imported when first used.
"""

from __future__ import annotations

from ...registry import lazy_exports
from .base import TEXT_ENCODERS, TextEncoder, TextOptions

__getattr__ = lazy_exports(__name__, {"encode_descriptions": "features", "encode_many": "features", "get_encoder": "features", "image_text": "features"})

__all__ = ["TEXT_ENCODERS", "TextEncoder", "TextOptions", "encode_descriptions", "encode_many", "get_encoder", "image_text"]
