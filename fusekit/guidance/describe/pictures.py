"""The images `--llm-vision` sends with the prompt, as base64 PNG data URIs (OpenAI's ``image_url`` content).

The papers' recipes: MTIF has the multimodal LLM look at both images of the pair (`pair_pictures`); TGIF gives it
the image with its segmentation and detection maps (`paragraph_pictures`: this image, then the SAM segments drawn
as filled boxes and the Florence-2 regions drawn as outlined boxes over the image, when those backends ran).
Images are sent at most `MAX_SIDE` pixels on their long side; the same pixels always give the same bytes, so the
requests (and the cache key made from them) are stable.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .base import ImageInfo

MAX_SIDE = 1024
# Distinct colours for the segment and region boxes (tab10).
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    picture = Image.fromarray(rgb)
    scale = MAX_SIDE / max(picture.size)
    if scale < 1:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def segmentation_map(image: ImageInfo) -> np.ndarray | None:
    """SAM's segments as filled boxes on black, largest first so smaller ones stay visible."""
    segments = [s for s in image.texts.get("segments") or [] if isinstance(s, dict) and s.get("box")]
    if not segments:
        return None
    from PIL import Image, ImageDraw

    height, width = image.pixels.shape[:2]
    canvas = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(canvas)
    for index, segment in enumerate(sorted(segments, key=lambda s: -float(s.get("area", 0)))):
        draw.rectangle([float(v) for v in segment["box"]], fill=PALETTE[index % len(PALETTE)])
    return np.asarray(canvas)


def detection_map(image: ImageInfo) -> np.ndarray | None:
    """Florence-2's regions as outlined boxes over the image."""
    regions = [r for r in image.texts.get("regions") or [] if isinstance(r, dict) and r.get("box")]
    if not regions:
        return None
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image.rgb())
    draw = ImageDraw.Draw(canvas)
    line = max(1, round(max(canvas.size) / 256))
    for index, region in enumerate(regions):
        draw.rectangle([float(v) for v in region["box"]], outline=PALETTE[index % len(PALETTE)], width=line)
    return np.asarray(canvas)


def paragraph_pictures(image: ImageInfo) -> tuple[list[str], str]:
    """(data URIs, a sentence saying what they are): the image, plus its segmentation and detection maps (TGIF)."""
    pictures, names = [data_uri(image.rgb())], ["this image"]
    for name, picture in (("its segmentation map (one coloured box per segment)", segmentation_map(image)),
                          ("its detection map (the dense-caption boxes drawn over it)", detection_map(image))):
        if picture is not None:
            pictures.append(data_uri(picture))
            names.append(name)
    return pictures, "Attached images, in order: " + "; ".join(names) + ".\n"


def pair_pictures(image: ImageInfo) -> tuple[list[str], str]:
    """(data URIs, what they are): this image and its partner, both in one request (MTIF)."""
    if image.partner is None:
        return [data_uri(image.rgb())], "Attached image: this image.\n"
    return ([data_uri(image.rgb()), data_uri(image.partner.rgb())],
            f"Attached images, in order: this image (image {image.role.upper()}), then the other image of the pair "
            f"(image {image.partner.role.upper()}).\n")
