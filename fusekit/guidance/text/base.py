"""What every text encoder shares: options, the registry, and loading once per run.

An encoder maps a list of texts to one [tokens, dim] float32 tensor per text. `encode_descriptions` (in
`features.py`) turns a descriptions document into the text-features tensors and metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...registry import Registry

TEXT_ENCODERS: Registry = Registry("text encoder", list_hint="known: offline, blip2, clip, hf (see fusekit encode-text --help)")


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


class TextEncoder:
    """Base of a text encoder. Subclasses set `name`, `default_model` and implement `encode` and `dim`."""

    name = ""
    default_model = ""

    def __init__(self, options: TextOptions):
        self.options = options

    @property
    def model_id(self) -> str:
        return self.options.model_path or self.options.model_id or self.default_model

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def encode(self, texts: list[str]) -> list:
        """One float32 tensor [tokens, dim] per text (CPU)."""
        raise NotImplementedError
