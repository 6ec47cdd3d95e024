"""What the text and image encoders share: a registry name, default weights, and the weights this run uses."""

from __future__ import annotations


class Encoder:
    """Base of `TextEncoder` and `ImageEncoder`. Subclasses set `name` and `default_model`; `options` carries
    ``model_path`` / ``model_id`` (the command's --model-path / --model)."""

    name = ""
    default_model = ""

    def __init__(self, options):
        self.options = options

    @property
    def model_id(self) -> str:
        """What the features record: the local folder when given, else the Hugging Face id."""
        return self.options.model_path or self.options.model_id or self.default_model
