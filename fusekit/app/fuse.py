"""Running any registered fusion model on image pairs: the one place guidance, colour and post-processing live.

For each pair the runner reads both images, turns them into the model's inputs (grey = BT.601 luma rounded to
integers, the released FILM convention; RGB for models whose spec says ``colour == "rgb"``), loads the guidance
the model needs through `fusekit.app.guidance` — the same sources as `train`: files, or the recipe the weights
were trained with computed on the fly when the weights record it or it is offline (so the bundled model needs no
files) — checks it against what the weights expect, runs the model (learned: torch under `inference_mode` on the chosen device and
precision, same-size pairs batched; training-free: `spec.fuse_arrays`), then post-processes and re-attaches colour:

- colour (default ``auto``): the fused luma gets the chroma of the colour source — IVF: the visible image (B);
  MIF: the functional image (B); MEF and MFF: a saturation-weighted blend of both sources' Cb/Cr (each weighted
  by its distance from neutral grey, as DeepFuse and most MEF code do), or the one colour source's chroma. An RGB
  file whose three channels are identical counts as grey. No colour source, or ``grey``: a grey PNG.
- post-processing: ``clip`` (default) clips the model output to [0, 1] and rounds to 8 bits (16 bits when an
  input is 16-bit); ``film`` is the released FILM test script: min-max normalise the raw output of each image,
  multiply by 255 and truncate to 8 bits.

The output always has the size of the inputs. docs/FUSE.md is the user-facing description.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import log
from ..errors import FusekitError, UsageError
from ..guidance.kinds import KINDS, SPATIAL_GUIDANCE
from ..io.images import grey_input, read_image, rgb_input, rgb_to_ycbcr, to_float, to_grey, merge_luma, from_float, require_finite
from ..io.pairs import Item
from ..models.registry import FUSION_MODELS, FusionModelSpec
from .guidance import GuidanceOptions, fuse_guidance

COLOUR_MODES = ("auto", "colour", "grey")
POSTPROCESSING = ("clip", "film")

def default_model(task: str) -> str:
    """The model `fuse` runs without --model: fusekit's `compact` where the measured rule of `fusekit.app.defaults`
    says it beats the task's best baseline (and its bundled weights exist), otherwise that baseline
    (`fusekit.models.baselines.DEFAULT`), else the first training-free model registered for the task."""
    from ..models.baselines import DEFAULT
    from .defaults import default_model as recorded

    if recorded(task) == "compact" and "compact" in FUSION_MODELS:
        compact = FUSION_MODELS.get("compact")
        if task in compact.tasks and compact.bundled_weights(task) is not None:
            return "compact"
    if task in DEFAULT:
        return DEFAULT[task]
    for name, spec in FUSION_MODELS.items():
        if spec.kind == "training-free" and task in spec.tasks:
            return name
    raise FusekitError(f"no default model for task {task!r}", "give --model (see 'fusekit models')")


# ------------------------------------------------------------------------------------------------- colour


def is_colour(image: np.ndarray) -> bool:
    """RGB with at least two different channels (RGB files storing grey count as grey)."""
    return image.ndim == 3 and not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def _chroma(image: np.ndarray) -> np.ndarray:
    return rgb_to_ycbcr(to_float(image))[..., 1:]


def chroma_for(task: str, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Cb/Cr [H, W, 2] in [0, 1] to re-attach to the fused luma, or None when the output stays grey."""
    colour_a, colour_b = is_colour(a), is_colour(b)
    if task in ("ivf", "mif"):
        return _chroma(b) if colour_b else None
    if colour_a and colour_b:
        ca, cb = _chroma(a), _chroma(b)
        wa, wb = np.abs(ca - 0.5), np.abs(cb - 0.5)
        total = wa + wb
        blended = np.where(total > 0, (ca * wa + cb * wb) / np.where(total > 0, total, 1), np.float32(0.5))
        return blended.astype(np.float32)
    if colour_a or colour_b:
        return _chroma(a if colour_a else b)
    return None


# ------------------------------------------------------------------------------------------- post-processing


def film_postprocess(raw: np.ndarray) -> np.ndarray:
    """The released test script: min-max normalise, ×255, truncate to uint8 (a constant image gives zeros)."""
    raw = raw.astype(np.float32)
    low, high = raw.min(), raw.max()
    if high == low:
        return np.zeros(raw.shape, np.uint8)
    return ((raw - low) / (high - low) * np.float32(255)).astype(np.uint8)


def finish(raw: np.ndarray, chroma: np.ndarray | None, postprocess: str, bits: int) -> np.ndarray:
    """Model output (luma [H, W], or RGB [H, W, 3] from an rgb model) → the uint8/uint16 image to write."""
    require_finite(raw, "the model's output")
    if postprocess == "film":
        levels = film_postprocess(raw)
        if chroma is None:
            return levels
        return from_float(merge_luma(levels.astype(np.float32) / 255, chroma), 8)
    fused = np.clip(raw.astype(np.float32), 0.0, 1.0)
    if chroma is not None:
        fused = merge_luma(fused, chroma)
    return from_float(fused, bits)


# ------------------------------------------------------------------------------------------------- the runner


@dataclass
class Pair:
    """One loaded pair: model inputs, guidance, and what is needed to finish the output."""

    item: Item
    a: np.ndarray  # model input A: float32 [H, W] (or [H, W, 3] for rgb models) in [0, 1]
    b: np.ndarray
    guidance: dict  # name → torch tensor without the batch axis
    chroma: np.ndarray | None  # Cb/Cr to re-attach to a fused luma
    rgb_out: bool  # an rgb model's colour output is kept as it is
    bits: int

    @property
    def batch_key(self):
        return (self.a.shape, tuple((name, tuple(t.shape)) for name, t in sorted(self.guidance.items())))


class Fuser:
    """A model ready to fuse pairs of one task: `load(item)` → `Pair`, `fuse([pairs])` → uint8/16 images."""

    def __init__(self, model: str | None, task: str, weights: str | None = None, *, text: str | None = None,
                 image_features: str | None = None, semantics: str | None = None, guidance: GuidanceOptions | None = None,
                 device: str = "auto", precision: str = "fp32", colour: str = "auto", postprocess: str = "clip",
                 prompt: str | None = None):
        """`guidance`: the shared guidance options (`text`, `image_features`, `semantics` are shorthands for its
        file options); `prompt`: the user's words, added to the text computed for each pair."""
        if colour not in COLOUR_MODES:
            raise UsageError(f"unknown colour mode {colour!r}", f"use one of {', '.join(COLOUR_MODES)}")
        if postprocess not in POSTPROCESSING:
            raise UsageError(f"unknown post-processing {postprocess!r}", f"use one of {', '.join(POSTPROCESSING)}")
        self.task = task
        self.name = FUSION_MODELS.canonical(model or default_model(task))
        self.spec: FusionModelSpec = FUSION_MODELS.get(self.name)
        if task not in self.spec.tasks:
            raise FusekitError(f"model {self.name!r} does not serve task {task!r}", f"it serves {', '.join(self.spec.tasks)}; see 'fusekit models'")
        self.colour, self.postprocess = colour, postprocess
        options = guidance or GuidanceOptions()
        options.text, options.image_features, options.semantics = (text or options.text, image_features or options.image_features,
                                                                   semantics or options.semantics)
        options.task = task
        options.prompt = prompt or options.prompt
        self.prompt = options.prompt
        needed = {KINDS[word].file_kind for word in self.spec.guidance}
        for kind in (KINDS["text"], KINDS["image_embeds"], KINDS["semantics"]):
            if options.path_for(kind) and kind.file_kind not in needed:
                log.warn(f"model {self.name!r} uses no {kind.words}; {options.path_for(kind)} is ignored")
        if self.spec.kind == "learned":
            from ..devices import resolve_device, resolve_precision
            from ..models.checkpoints import load_model

            self.device = resolve_device(device)
            self.dtype = resolve_precision(precision, self.device)
            self.module, self.metadata = load_model(self.name, weights, task, self.device, self.dtype)
        else:
            if weights:
                raise UsageError(f"model {self.name!r} is training-free and takes no --weights", "drop --weights")
            self.module, self.metadata = None, {"model": self.name}
        self.guidance = fuse_guidance(self.spec, options, task, self.metadata, device, precision)

    def check_guidance_given(self, items: list[Item]) -> None:
        """A model needing guidance without a source for it fails before any work starts; so does a prompt that
        cannot reach the model (its text comes from files, or it takes no text)."""
        self.guidance.check_prompt(items, self.prompt)
        self.guidance.check_available(items)

    def load(self, item: Item) -> Pair:
        """Read a pair and its guidance; every problem is a user error naming the file."""
        image_a, image_b = read_image(item.a), read_image(item.b)
        if image_a.shape[:2] != image_b.shape[:2]:
            (ha, wa), (hb, wb) = image_a.shape[:2], image_b.shape[:2]
            raise FusekitError(f"A is {wa}x{ha} but B is {wb}x{hb}", "fusion needs registered pairs of the same size")
        rgb_model = self.spec.colour == "rgb"
        a, b = (rgb_input(image) if rgb_model else grey_input(image) for image in (image_a, image_b))
        any_colour = is_colour(image_a) or is_colour(image_b)
        rgb_out = rgb_model and (self.colour == "colour" or (self.colour == "auto" and any_colour))
        chroma = chroma_for(self.task, image_a, image_b) if self.colour != "grey" and not rgb_model else None
        if self.colour == "colour" and not rgb_model and chroma is None:
            log.warn(f"{item.name}: no colour source for task {self.task}; writing grey")
        bits = 16 if image_a.dtype == np.uint16 or image_b.dtype == np.uint16 else 8
        return Pair(item, a, b, self._guidance(item, [image_a, image_b]), chroma, rgb_out, bits)

    def _guidance(self, item: Item, pixels: list[np.ndarray]) -> dict:
        guidance = self.guidance.for_item(item, pixels)
        for name in SPATIAL_GUIDANCE:  # spatial guidance gets its channel axis: [1, H, W]
            if name in guidance:
                guidance[name] = guidance[name][None]
        return guidance

    def fuse(self, pairs: list[Pair]) -> list[np.ndarray]:
        """Fuse loaded pairs (same `batch_key` when several) → images ready to write."""
        if self.module is None:
            raws = [np.asarray(self.spec.fuse_arrays(p.a, p.b, self.task), dtype=np.float32) for p in pairs]
        else:
            raws = self._run_learned(pairs)
        images = []
        for pair, raw in zip(pairs, raws):
            if raw.shape != pair.a.shape:
                raise RuntimeError(f"model {self.name!r} returned {raw.shape} for inputs of {pair.a.shape}")
            if pair.rgb_out:
                images.append(finish(raw, None, self.postprocess, pair.bits))
            elif raw.ndim == 3:  # rgb model, grey output
                images.append(finish(to_grey(raw, rounded=False), None, self.postprocess, pair.bits))
            else:
                images.append(finish(raw, pair.chroma, self.postprocess, pair.bits))
        return images

    def _run_learned(self, pairs: list[Pair]) -> list[np.ndarray]:
        import dataclasses

        from . import tiling

        if tiling.wanted(self.spec, pairs):  # large images: overlapping tiles, so memory stays bounded
            # what a model reads from the whole image (CompactFusion.whole_image_inputs) goes to every tile with it
            whole = getattr(self.module, "whole_image_inputs", None)
            tiled = [dataclasses.replace(p, guidance={**p.guidance, **whole(p.a, p.b)}) if whole else p for p in pairs]
            if getattr(self.module, "blends_whole_image", False):  # tiles compute the layers, the blend is global
                return [self._blend_whole(p) for p in tiled]
            return [tiling.fuse_tiled(lambda a, b, p=p: self._forward([dataclasses.replace(p, a=a, b=b)], self.module)[0][0], p.a, p.b)
                    for p in tiled]
        return [out[0] for out in self._forward(pairs, self.module)]

    def _forward(self, pairs: list[Pair], method) -> list[np.ndarray]:
        """`method(a, b, **guidance)` of the model on a batch of pairs → one float32 [C, H, W] array per pair."""
        import torch

        def batch(arrays):
            return torch.from_numpy(np.stack(arrays)).to(self.device, self.dtype)

        a = batch([p.a for p in pairs])[:, None]
        b = batch([p.b for p in pairs])[:, None]
        guidance = {name: torch.stack([p.guidance[name] for p in pairs]).to(self.device, self.dtype) for name in pairs[0].guidance}
        with torch.inference_mode():
            out = method(a, b, **guidance)
        return list(out.float().cpu().numpy())

    def _blend_whole(self, pair: Pair) -> np.ndarray:
        """A large pair through a model whose last step blends the whole image (`CompactFusion.blends_whole_image`):
        its local layers tile by tile, then one blend of the stitched layers."""
        import dataclasses

        from . import tiling

        layers = tiling.fuse_tiled(
            lambda a, b: self._forward([dataclasses.replace(pair, a=a, b=b)], self.module.local_layers)[0], pair.a, pair.b)
        return self.module.blend_layers_array(layers)


def output_path(item: Item, output: str, single: bool) -> str:
    """Where an item's fused image goes: `output` itself for one pair (``OUTPUT/<name>.png`` when it is a
    folder), else ``OUTDIR/<name>.png`` (or the manifest's ``out``)."""
    if item.fields.get("out"):
        return str(item.fields["out"])
    if single and not os.path.isdir(output):
        return output
    return os.path.join(output, f"{item.name}.png")
