"""Image preprocessing for the vision-language models, done with PIL and numpy (no torchvision needed).

Mirrors what the models' own image processors do: bicubic resize, optional centre crop, scaling to [0, 1] and
per-channel normalisation with the mean / std saved beside the weights (CLIP's by default).
"""

from __future__ import annotations

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(rgb: np.ndarray, size: tuple[int, int], mean=CLIP_MEAN, std=CLIP_STD, crop: bool = False):
    """uint8 [H, W, 3] → float32 tensor [3, h, w]. `size` is (h, w); with `crop`, resize the short side to fit
    and cut the centre (CLIP), else resize to exactly `size` (BLIP-2, Florence-2)."""
    import torch
    from PIL import Image

    image = Image.fromarray(rgb)
    height, width = size
    if crop:
        scale = max(height / image.height, width / image.width)
        resized = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        image = image.resize(resized, Image.BICUBIC)
        left, top = (image.width - width) // 2, (image.height - height) // 2
        image = image.crop((left, top, left + width, top + height))
    else:
        image = image.resize((width, height), Image.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def processor_settings(folder: str | None, default_size: int, mean=CLIP_MEAN, std=CLIP_STD) -> dict:
    """size / mean / std from a saved preprocessor_config.json, falling back to the model's defaults."""
    from ...hub import read_json_file

    config = read_json_file(folder, "preprocessor_config.json")
    size = config.get("crop_size") or config.get("size") or {}
    if isinstance(size, dict):
        height = size.get("height") or size.get("shortest_edge") or default_size
        width = size.get("width") or size.get("shortest_edge") or default_size
    else:
        height = width = int(size) if size else default_size
    return {
        "size": (int(height), int(width)),
        "mean": tuple(config.get("image_mean") or mean),
        "std": tuple(config.get("image_std") or std),
    }
