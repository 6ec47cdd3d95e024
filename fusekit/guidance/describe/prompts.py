"""The prompts the `llm` backend sends: FILM's paragraph recipe and MTIF's three-level descriptions.

FILM (Sec. 3.1, 4) prompts ChatGPT with an image caption (BLIP-2), dense region captions (GRIT) and a semantic
mask (SAM) and asks for a paragraph per image that stresses what that image contributes to the fusion: thermal
targets for infrared, texture for visible, well-exposed regions for multi-exposure, in-focus regions for
multi-focus, structure vs function for medical pairs. MTIF (Sec. 4.3) asks a multimodal LLM for detail-level,
structure-level and semantic-level descriptions. Both prompts carry only what the earlier backends measured or
saw, and tell the model not to invent content. The wording is fusekit's own: neither paper publishes its prompt.

Small local models (135M-1B) cannot follow "answer with a JSON object with three keys", so they get one short
request per level (`level_messages`); endpoints get the single JSON request (`levels_messages`). With
``--llm-vision`` the user message also carries images (OpenAI ``image_url`` parts with base64 PNG data URIs):
this image for the paragraph, with TGIF's segmentation and detection maps when SAM / Florence-2 ran, and both
images of the pair for MTIF's levels.
"""

from __future__ import annotations

from .base import ImageInfo

TASK_NAMES = {
    "ivf": "infrared-visible",
    "mif": "medical (MRI with CT, PET or SPECT)",
    "mef": "multi-exposure",
    "mff": "multi-focus",
}

IMAGE_NOUNS = {
    ("ivf", "a"): "the infrared (thermal) image",
    ("ivf", "b"): "the visible-light image",
    ("mif", "a"): "the MRI scan",
    ("mif", "b"): "the CT, PET or SPECT scan",
    ("mef", "a"): "the over-exposed image",
    ("mef", "b"): "the under-exposed image",
    ("mff", "a"): "the first multi-focus image",
    ("mff", "b"): "the second multi-focus image",
}

# What the paragraph should stress, per task and role (FILM's task-specific descriptions).
FOCUS = {
    ("ivf", "a"): "Stress what the infrared image contributes: thermal targets such as people, vehicles and animals, "
                  "where they are, and how they stand out from the background regardless of lighting.",
    ("ivf", "b"): "Stress what the visible image contributes: texture, edges, colours and scene detail, and say where "
                  "poor lighting hides content.",
    ("mif", "a"): "Stress structural information: anatomy, soft-tissue boundaries and where they lie.",
    ("mif", "b"): "Stress functional information (metabolic or blood-flow activity for PET/SPECT, dense structures "
                  "such as bone for CT) and where it is strongest.",
    ("mef", "a"): "Stress which regions are well exposed and keep their detail (typically the darker, shadowed parts) "
                  "and which are blown out.",
    ("mef", "b"): "Stress which regions are well exposed and keep their detail (typically the bright parts such as sky "
                  "and lamps) and which shadows are lost.",
    ("mff", "a"): "Stress which regions are in sharp focus and which are blurred, with their positions.",
    ("mff", "b"): "Stress which regions are in sharp focus and which are blurred, with their positions.",
}

LEVELS_REQUEST = (
    "Describe this image at three levels of granularity and answer with a JSON object with exactly the keys "
    '"detail", "structure" and "semantic", each one to three sentences: "detail" = fine textures, edges, small '
    'objects and how sharp they are; "structure" = spatial layout, shapes, large regions, brightness distribution '
    'and where the salient content lies; "semantic" = what the scene shows and what this image contributes to the '
    "fused image. Answer with the JSON object only."
)

# One short request per level, for models too small to write a JSON object (MTIF's three granularities).
LEVEL_REQUESTS = {
    "detail": "In two sentences, describe the fine details of this image: textures, edges, small objects and how "
              "sharp they are.",
    "structure": "In two sentences, describe the layout of this image: the large regions and shapes, where it is "
                 "bright or dark, and where the main content lies.",
    "semantic": "In two sentences, say what the scene shows and what this image adds to the fused image.",
}

SYSTEM = (
    "You write precise descriptions of source images for image fusion. Use only the information given; "
    "never invent objects that it does not support."
)


def _regions(texts: dict) -> str:
    regions = texts.get("regions") or []
    return "; ".join(f"{r.get('caption', '').strip()} at {r.get('box')}" for r in regions[:20] if isinstance(r, dict)) or "none"


def _segments(texts: dict) -> str:
    segments = texts.get("segments") or []
    if not segments:
        return "none"
    parts = [(f"{s['label']} " if s.get("label") else "")
             + f"box {s.get('box')}, {100 * float(s.get('area', 0)):.1f}% of the image, mean intensity {float(s.get('mean_intensity', 0)):.0f}"
             for s in segments[:15] if isinstance(s, dict)]
    return f"{len(segments)} segments: " + "; ".join(parts)


def evidence(image: ImageInfo) -> str:
    """What the earlier backends found, one labelled line each (FILM's prompt ingredients)."""
    texts = image.texts
    height, width = image.pixels.shape[:2]
    lines = [
        f"Task: {TASK_NAMES[image.task]} image fusion. This is {IMAGE_NOUNS[(image.task, image.role)]} "
        f"(image {image.role.upper()} of the pair, {width}x{height} pixels).",
        f"Image caption: {texts.get('caption') or 'none'}",
        f"Dense caption (regions with [x0, y0, x1, y1] boxes): {_regions(texts)}",
        f"Segments: {_segments(texts)}",
    ]
    measured = image.memo.get("stats_paragraph")
    if measured:
        lines.append(f"Measured image statistics: {measured}")
    return "\n".join(lines)


def _messages(image: ImageInfo, request: str, pictures: list[str] = ()) -> list[dict]:
    """System + user message; with `pictures` (data URIs) the user content is OpenAI's text + image_url parts."""
    if not pictures:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]
    content = [{"type": "text", "text": request}] + [{"type": "image_url", "image_url": {"url": url}} for url in pictures]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def paragraph_messages(image: ImageInfo, pictures: list[str] = (), shown: str = "") -> list[dict]:
    request = (
        f"{evidence(image)}\n{shown}\nWrite one paragraph of about seven sentences describing this image for "
        f"{TASK_NAMES[image.task]} image fusion. {FOCUS[(image.task, image.role)]} Answer with the paragraph only."
    )
    return _messages(image, request, pictures)


def levels_messages(image: ImageInfo, pictures: list[str] = (), shown: str = "") -> list[dict]:
    request = f"{evidence(image)}\n{shown}\n{FOCUS[(image.task, image.role)]} {LEVELS_REQUEST}"
    return _messages(image, request, pictures)


def level_messages(image: ImageInfo, level: str, pictures: list[str] = (), shown: str = "") -> list[dict]:
    """One short request for one level: what a 135M-1B model can follow."""
    return _messages(image, f"{evidence(image)}\n{shown}\n{FOCUS[(image.task, image.role)]} {LEVEL_REQUESTS[level]}", pictures)


def prompt_text(messages: list[dict]) -> str:
    """The words of a request (no images), e.g. to tell whether a reply only copies it."""
    parts = []
    for message in messages:
        content = message["content"]
        parts.extend([content] if isinstance(content, str) else [p["text"] for p in content if p.get("type") == "text"])
    return "\n\n".join(parts)
