"""The `vlm` backend: FILM's paragraph and MTIF's levels from a local vision-language model that sees the image.

The local counterpart of ``llm --llm-vision``: any transformers `AutoModelForImageTextToText` with a processor
that has a chat template (SmolVLM, Qwen2.5-VL, LLaVA, ...), given by ``--model-path vlm=DIR`` or
``--model vlm=ID``. Each request carries this image and the same evidence text as the `llm` prompts (earlier
backends' captions, regions, segments, statistics); the levels are asked one short request each, which small
models follow. Replies are checked and fall back to the stats text exactly as the `llm` backend's are.
"""

from __future__ import annotations

import base64
import io

from ...io.formats import TEXT_LEVELS
from .base import ImageInfo
from .llm import LLMDescriber
from .pictures import data_uri
from .prompts import level_messages, paragraph_messages

DEFAULT_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"
SHOWN = "Attached image: this image.\n"


def _picture(url: str):
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


class LocalVLM:
    """An image-text-to-text model run in-process with greedy decoding, fed OpenAI-style messages."""

    def __init__(self, model_id: str, model_path: str | None, options):
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

        from ...hub import load_pretrained, model_device

        self.device, self.dtype = model_device(options)
        model = load_pretrained(AutoModelForImageTextToText.from_pretrained, model_id, model_path, "vision-language model",
                                tuple(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES))
        self.processor = load_pretrained(AutoProcessor.from_pretrained, model_id, model_path, "vision-language processor")
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.max_tokens = options.llm_max_tokens

    @staticmethod
    def convert(messages: list[dict]) -> tuple[list[dict], list]:
        """(messages in transformers' chat format, the PIL images in the order their placeholders appear)."""
        converted, pictures = [], []
        for message in messages:
            parts = [{"type": "text", "text": message["content"]}] if isinstance(message["content"], str) else []
            for part in [] if isinstance(message["content"], str) else message["content"]:
                if part["type"] == "image_url":
                    pictures.append(_picture(part["image_url"]["url"]))
                    parts.append({"type": "image"})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            converted.append({"role": message["role"], "content": parts})
        return converted, pictures

    def complete_many(self, conversations: list[list[dict]], max_tokens: int | None = None) -> list[str]:
        """One prompt at a time: not batched yet (each carries its own images)."""
        return [self.complete(messages, max_tokens) for messages in conversations]

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        import torch

        converted, pictures = self.convert(messages)
        prompt = self.processor.apply_chat_template(converted, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=prompt, images=pictures or None, return_tensors="pt").to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_tokens or self.max_tokens, do_sample=False,
                                         repetition_penalty=1.15, no_repeat_ngram_size=4,
                                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


class VLMDescriber(LLMDescriber):
    name = "vlm"
    default_model = DEFAULT_MODEL
    local = True

    @property
    def model_id(self) -> str:
        return self.model_path or self.options.model_ids.get(self.name) or DEFAULT_MODEL

    def _client(self):
        if not hasattr(self, "_cached_client"):
            self._cached_client = LocalVLM(self.options.model_ids.get(self.name) or DEFAULT_MODEL, self.model_path, self.options)
        return self._cached_client

    def _requests(self, image: ImageInfo) -> list[tuple[str, list[dict]]]:
        pictures = [data_uri(image.rgb())]
        requests = [("paragraph", paragraph_messages(image, pictures, SHOWN))]
        if self.options.llm_levels:
            requests += [(level, level_messages(image, level, pictures, SHOWN)) for level in TEXT_LEVELS]
        return requests
