"""The `florence2` backend: dense region captions with boxes (FILM's "dense caption"; GRIT's maintained stand-in).

Runs transformers' native Florence-2 with the ``<DENSE_REGION_CAPTION>`` task and parses its
``label<loc_x0><loc_y0><loc_x1><loc_y1>`` answer: locations are bins of 1/1000 of the image size, mapped back to
pixel boxes [x0, y0, x1, y1] (bin centres, as Florence-2's own post-processor does).
"""

from __future__ import annotations

import functools
import re

from .base import Describer, ImageInfo

TASK_TOKEN = "<DENSE_REGION_CAPTION>"
REGION = re.compile(r"([^<]+?)\s*((?:<loc_\d+>){4})")
LOCATION = re.compile(r"<loc_(\d+)>")
BINS = 1000
REGION_TOKENS = 512  # ~ 5 tokens per box + the words: a few dozen regions


def parse_regions(text: str, width: int, height: int) -> list[dict]:
    """[{box, caption}] from Florence-2's generated text."""
    for token in ("</s>", "<s>", "<pad>"):
        text = text.replace(token, "")
    regions = []
    for label, locations in REGION.findall(text):
        bins = [int(value) for value in LOCATION.findall(locations)]
        box = [
            round((min(bins[0], BINS - 1) + 0.5) * width / BINS, 1),
            round((min(bins[1], BINS - 1) + 0.5) * height / BINS, 1),
            round((min(bins[2], BINS - 1) + 0.5) * width / BINS, 1),
            round((min(bins[3], BINS - 1) + 0.5) * height / BINS, 1),
        ]
        caption = label.strip()
        if caption:
            regions.append({"box": box, "caption": caption})
    return regions


class Florence2Describer(Describer):
    name = "florence2"
    default_model = "florence-community/Florence-2-large"

    @functools.cached_property
    def loaded(self):
        from transformers import AutoProcessor, Florence2ForConditionalGeneration

        return self.load_with_processor(Florence2ForConditionalGeneration, "Florence-2 model", AutoProcessor, "Florence-2 processor", ("florence2",))

    @staticmethod
    def _region_tokens(model) -> int:
        """Room for a few dozen regions, within the decoder's position limit."""
        limit = getattr(model.config.text_config, "max_position_embeddings", 1024)
        return max(8, min(REGION_TOKENS, limit - 2))

    def describe_batch(self, images: list[ImageInfo]) -> list[dict]:
        """One generate call for all the images: every prompt is the same task token, so nothing is padded."""
        import torch
        from PIL import Image

        processor, model, device, dtype = self.loaded
        pictures = [image.rgb() for image in images]
        inputs = processor(text=[TASK_TOKEN] * len(pictures), images=[Image.fromarray(rgb) for rgb in pictures], return_tensors="pt")
        with torch.inference_mode():
            output = model.generate(
                input_ids=inputs["input_ids"].to(device),
                pixel_values=inputs["pixel_values"].to(device=device, dtype=dtype),
                max_new_tokens=self._region_tokens(model), num_beams=3, do_sample=False,
            )
        texts = processor.batch_decode(output, skip_special_tokens=False)
        return [{"regions": parse_regions(text, rgb.shape[1], rgb.shape[0])} for text, rgb in zip(texts, pictures)]
