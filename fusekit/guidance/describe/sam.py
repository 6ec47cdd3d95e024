"""The `sam` backend: segments from SAM prompted with a regular point grid (FILM's "semantic mask").

Like SAM's automatic mask generator, in small: the image is embedded once; every point of an N × N grid prompts
the mask decoder; each point keeps its best-scoring mask when the predicted IoU is high enough; near-duplicate
masks (mask IoU > 0.7) keep the better one. Each segment is reported as its box, area fraction, mean grey level
and predicted IoU — what the LLM prompt needs, without storing masks.

FILM's Image2Paragraph-style prompt names what each region is. When `florence2` ran before (it always runs first),
each segment carries the `label` of the dense-caption region whose box overlaps it best (box IoU at least
`LABEL_IOU`), so the LLM reads "a person box [...]" instead of a bare box.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from .base import Describer, ImageInfo

MIN_SCORE = 0.7  # predicted IoU a mask needs to be kept
MIN_AREA = 0.002  # fraction of the image
DUPLICATE_IOU = 0.7
MAX_SEGMENTS = 24
LABEL_IOU = 0.25


def box_iou(a: list, b: list) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


def label_segments(segments: list[dict], regions: list) -> list[dict]:
    """Each segment with the caption of its best-overlapping dense-caption region as `label` (when one overlaps)."""
    regions = [r for r in regions or [] if isinstance(r, dict) and r.get("box") and r.get("caption")]
    for segment in segments:
        scored = [(box_iou(segment["box"], region["box"]), index) for index, region in enumerate(regions)]
        best = max(scored, default=(0.0, -1))
        if best[0] >= LABEL_IOU:
            segment["label"] = regions[best[1]]["caption"]
    return segments


def select_segments(masks: np.ndarray, scores: np.ndarray, grey: np.ndarray) -> list[dict]:
    """Segments from per-point candidate masks [P, K, H, W] (bool) and their scores [P, K]."""
    best = scores.argmax(axis=1)
    candidates = []
    for point, choice in enumerate(best):
        score = float(scores[point, choice])
        mask = masks[point, choice]
        area = float(mask.mean())
        if score >= MIN_SCORE and area >= MIN_AREA:
            candidates.append((score, point, mask))
    candidates.sort(key=lambda entry: (-entry[0], entry[1]))
    kept: list[tuple[float, np.ndarray]] = []
    for score, _, mask in candidates:
        if all((mask & other).sum() / max((mask | other).sum(), 1) <= DUPLICATE_IOU for _, other in kept):
            kept.append((score, mask))
        if len(kept) == MAX_SEGMENTS:
            break
    segments = []
    for score, mask in sorted(kept, key=lambda entry: -entry[1].sum()):
        rows, cols = np.nonzero(mask)
        segments.append({
            "box": [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1],
            "area": round(float(mask.mean()), 4),
            "mean_intensity": round(float(grey[mask].mean()), 1),
            "score": round(score, 3),
        })
    return segments


class SamDescriber(Describer):
    name = "sam"
    default_model = "facebook/sam-vit-base"

    @functools.cached_property
    def loaded(self):
        from transformers import SamModel, SamProcessor

        return self.load_with_processor(SamModel, "SAM model", SamProcessor, "SAM processor", ("sam",))

    def cache_key(self, image: ImageInfo) -> str:
        """The labels come from the dense captions, so a cached entry is only valid for the same regions."""
        regions = image.texts.get("regions")
        return json.dumps(regions, sort_keys=True) if regions else ""

    def describe_batch(self, images: list[ImageInfo]) -> list[dict]:
        """The images embedded in one call and their point grids (the same count each) decoded in one call."""
        import torch
        from PIL import Image

        from .measure import grey_255

        processor, model, device, dtype = self.loaded
        pictures = [image.rgb() for image in images]
        n = max(1, self.options.sam_points)
        grids = [[[[(i + 0.5) * rgb.shape[1] / n, (j + 0.5) * rgb.shape[0] / n]] for j in range(n) for i in range(n)]
                 for rgb in pictures]
        inputs = processor(images=[Image.fromarray(rgb) for rgb in pictures], input_points=grids, return_tensors="pt")
        with torch.inference_mode():
            embeddings = model.get_image_embeddings(inputs["pixel_values"].to(device=device, dtype=dtype))
            output = model(image_embeddings=embeddings, input_points=inputs["input_points"].to(device=device, dtype=dtype),
                           multimask_output=True)
        masks = processor.image_processor.post_process_masks(
            output.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"])
        scores = output.iou_scores.float().cpu().numpy()
        results = []
        for image, image_masks, image_scores in zip(images, masks, scores):
            segments = select_segments(image_masks.numpy().astype(bool), image_scores, grey_255(image.pixels))
            results.append({"segments": label_segments(segments, image.texts.get("regions"))})
        return results
