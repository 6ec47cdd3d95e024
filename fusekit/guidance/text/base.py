"""What every text encoder shares: options, the registry, and loading once per run.

An encoder maps a list of texts to one [tokens, dim] float32 array per text (numpy for the offline encoder, which
needs no torch; torch tensors for the model encoders). `encode_descriptions` (in
`features.py`) turns a descriptions document into the text-features tensors and metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...registry import Registry
from ..encoder import Encoder

# One line per encoder: name, class (imported when the encoder is used), aliases, and what `encode-text --list` and
# `--help` say about it (`model`: the default weights). Other packages add encoders through the
# ``fusekit.text_encoders`` entry-point group (docs/PLUGINS.md).
TEXT_ENCODERS: Registry = Registry("text encoder", "known: {known} (fusekit encode-text --list)", group="fusekit.text_encoders")
TEXT_ENCODERS.add_lazy("offline", "fusekit.guidance.text.offline:OfflineEncoder", aliases=("hashed",), model="",
                       summary="deterministic hashed-token embeddings, no weights, 768-d or --dim")
TEXT_ENCODERS.add_lazy("blip2", "fusekit.guidance.text.models:Blip2TextEncoder", aliases=("qformer",),
                       model="Salesforce/blip2-itm-vit-g",
                       summary="the BLIP-2 Q-Former text model FILM uses: 768-d token states, or 256-d with --projected")
TEXT_ENCODERS.add_lazy("clip", "fusekit.guidance.text.models:ClipTextEncoder", model="openai/clip-vit-base-patch32",
                       summary="CLIP text model token states")
TEXT_ENCODERS.add_lazy("hf", "fusekit.guidance.text.models:HFTextEncoder", aliases=("auto", "huggingface"), model="",
                       summary="any Hugging Face text encoder folder (AutoModel + tokenizer, --model-path DIR): token states, or mean-pooled with --pooled")


@dataclass
class TextOptions:
    device: str = "auto"
    precision: str = "fp32"
    model_path: str | None = None
    model_id: str | None = None
    dim: int = 768  # offline encoder only; model encoders have their model's width
    projected: bool = False  # blip2: the 256-d projected token states instead of the 768-d hidden states
    pooled: bool = False  # hf: one mean-pooled row per text instead of the token states
    max_tokens: int = 512  # per text, including the start token
    batch_size: int = 1  # model encoders: texts per forward pass (padded to the longest, masked; same states as one by one)


class TextEncoder(Encoder):
    """Base of a text encoder. Subclasses set `name`, `default_model` and implement `encode` and `dim`."""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def encode(self, texts: list[str]) -> list:
        """One float32 array [tokens, dim] per text (CPU): numpy arrays or torch tensors."""
        raise NotImplementedError
