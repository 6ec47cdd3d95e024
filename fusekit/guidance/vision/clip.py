"""CLIP image embeddings (MGFusion's guidance): `CLIPVisionModelWithProjection`'s projected image embeds."""

from __future__ import annotations

from .base import ImageEncoder
from .preprocess import processor_settings, to_tensor


class ClipImageEncoder(ImageEncoder):
    name = "clip"
    default_model = "openai/clip-vit-base-patch32"

    def _load(self):
        from transformers import CLIPVisionModelWithProjection

        from ...hub import load_pretrained, model_device

        device, dtype = model_device(self.options)
        model = load_pretrained(CLIPVisionModelWithProjection.from_pretrained, self.options.model_id or self.default_model,
                                self.options.model_path, "CLIP image encoder", ("clip", "clip_vision_model"))
        model = model.to(device=device, dtype=dtype).eval()
        settings = processor_settings(self.options.model_path, model.config.image_size)
        return model, device, dtype, settings

    @property
    def dim(self) -> int:
        return int(self.model[0].config.projection_dim)

    def embed(self, images: list) -> "torch.Tensor":  # noqa: F821
        import torch

        model, device, dtype, settings = self.model
        batch = torch.stack([to_tensor(rgb, settings["size"], settings["mean"], settings["std"], crop=True) for rgb in images])
        with torch.inference_mode():
            embeds = model(pixel_values=batch.to(device=device, dtype=dtype)).image_embeds
        return embeds.float().cpu()
