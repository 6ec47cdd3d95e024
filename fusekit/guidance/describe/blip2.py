"""The `blip2` backend: a one-sentence caption per image (FILM's "image caption"), Blip2ForConditionalGeneration."""

from __future__ import annotations

import functools

from .base import Describer, ImageInfo


class Blip2Describer(Describer):
    name = "blip2"
    default_model = "Salesforce/blip2-opt-2.7b"

    @functools.cached_property
    def loaded(self):
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        return self.load_with_processor(Blip2ForConditionalGeneration, "BLIP-2 captioning model", Blip2Processor, "BLIP-2 processor", ("blip-2",))

    def describe_batch(self, images: list[ImageInfo]) -> list[dict]:
        """One generate call for all the images: the prompt is the same image tokens for each, so nothing is padded."""
        import torch
        from PIL import Image

        processor, model, device, dtype = self.loaded
        inputs = processor(images=[Image.fromarray(image.rgb()) for image in images], return_tensors="pt")
        pixels = inputs["pixel_values"].to(device=device, dtype=dtype)
        with torch.inference_mode():
            output = model.generate(pixel_values=pixels, max_new_tokens=self.options.max_new_tokens, do_sample=False)
        return [{"caption": caption.strip()} for caption in processor.batch_decode(output, skip_special_tokens=True)]
