"""Running any registered fusion model on image pairs: the one place guidance, colour and post-processing live.

For each pair the runner reads both images, turns them into the model's inputs (grey = BT.601 luma rounded to
integers, the released FILM convention; RGB for models whose spec says ``colour == "rgb"``), loads the guidance
the model needs (text features, image features, semantics; text features for weights trained on the `offline`
encoder are made on the fly when none are given, so the bundled model needs no files) and checks it against
what the weights expect, runs the model (learned: torch under `inference_mode` on the chosen device and
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
from dataclasses import dataclass, field

import numpy as np

from .. import log
from ..errors import FusekitError, UsageError
from ..io.formats import KIND_WORDS, WRITTEN_BY, read_safetensors, read_vlf_text_features, sha256_file
from ..io.images import max_value, read_image, rgb_to_ycbcr, to_float, to_grey, merge_luma, from_float
from ..io.pairfiles import PairFiles
from ..io.pairs import Item
from ..models.registry import FUSION_MODELS, FusionModelSpec

COLOUR_MODES = ("auto", "colour", "grey")
POSTPROCESSING = ("clip", "film")

# Guidance word (FusionModelSpec.guidance) → (file kind, option, tensors given to the model).
GUIDANCE_FILES = {
    "text": ("text-features", "--text", ("text",)),
    "text_levels": ("text-features", "--text", ("text_detail", "text_structure", "text_semantic")),
    "image_embeds": ("image-features", "--image-features", ("image_embed_a", "image_embed_b")),
    "semantics": ("semantics", "--semantics", ("mask", "text_semantics")),
}
# Manifest field naming a pair's own file, per file kind.
MANIFEST_FIELDS = {"text-features": "text", "image-features": "image_features", "semantics": "semantics"}


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


# --------------------------------------------------------------------------------------------- guidance files


@dataclass
class GuidanceSource:
    """Where one kind of guidance comes from: one file for every pair, or a folder of per-pair files
    (`fusekit.io.pairfiles.PairFiles`); a manifest line's own field overrides both."""

    kind: str
    path: str | None
    _files: PairFiles | None = field(default=None, repr=False)

    def file_for(self, item: Item, hashes) -> tuple[str, bool]:
        """(file of this item, whether it was matched by image hashes)."""
        override = item.fields.get(MANIFEST_FIELDS[self.kind])
        if override:
            return str(override), False
        if self.path is None:
            raise AssertionError("no source")
        if self._files is None:
            suffixes = (".safetensors", ".npy") if self.kind == "text-features" else (".safetensors",)
            self._files = PairFiles(self.path, suffixes)
        found = self._files.find(item.name, hashes)
        if found:
            return str(found[0]), found[1]
        raise FusekitError(
            f"no {KIND_WORDS[self.kind]} for pair {item.name!r} in {self.path}",
            f"name it {item.name}.safetensors or make it with {WRITTEN_BY[self.kind]}",
        )


def _read_guidance_file(kind: str, path: str) -> tuple[dict, dict]:
    if kind == "text-features" and path.endswith(".npy"):
        return read_vlf_text_features(path)
    tensors, metadata = read_safetensors(path, kind)
    if kind == "image-features":
        for role in ("a", "b"):  # accept the short names too
            if f"image_embed_{role}" not in tensors and f"embed_{role}" in tensors:
                tensors[f"image_embed_{role}"] = tensors.pop(f"embed_{role}")
    return tensors, metadata


def _check_features(kind: str, path: str, tensors: dict, metadata: dict, expected: dict, model: str) -> None:
    """Refuse features of another encoder or dimension than the weights expect, saying what to run instead."""
    prefix = "text" if kind == "text-features" else "image" if kind == "image-features" else None
    if prefix is None:
        return
    need_encoder, need_dim = expected.get(f"{prefix}_encoder"), expected.get(f"{prefix}_dim")
    command = "fusekit encode-text" if prefix == "text" else "fusekit encode-image"
    encoder = metadata.get("encoder")
    if need_encoder and encoder and encoder != need_encoder:
        raise FusekitError(
            f"{path} holds {encoder!r} features, but model {model!r} with these weights needs {need_encoder!r} features",
            f"run {command} --encoder {need_encoder}",
        )
    dims = {int(t.shape[-1]) for t in tensors.values() if hasattr(t, "shape") and t.ndim >= 1}
    if need_dim and dims and dims != {int(need_dim)}:
        raise FusekitError(
            f"{path} holds {'/'.join(map(str, sorted(dims)))}-d features, but model {model!r} with these weights needs {need_dim}-d",
            f"run {command} --encoder {need_encoder or 'the encoder the weights were trained with'}",
        )


def _check_hashes(path: str, metadata: dict, hashes, item: Item) -> None:
    """Warn when the features were made from other images; refuse them when A and B were swapped."""
    want_a, want_b = metadata.get("image_sha256_a"), metadata.get("image_sha256_b")
    if not (want_a and want_b):
        return
    have_a, have_b = hashes()
    if (want_a, want_b) == (have_a, have_b):
        return
    if (want_a, want_b) == (have_b, have_a):
        raise FusekitError(f"{path} was made with A and B swapped for pair {item.name!r}", "re-run encode with the images in the task's A/B order")
    log.warn(f"{item.name}: {path} was computed from other images (hashes differ)")


def offline_text_features(item: Item, task: str, pixels: list[np.ndarray], prompt: str | None = None) -> tuple[dict, dict]:
    """What `fusekit describe --backend stats [--prompt P] | fusekit encode-text --encoder offline` writes for a
    pair, in memory, from the pair's already decoded `pixels` [A, B]."""
    from ..guidance.describe import DescribeOptions, describe_pair
    from ..guidance.text import encode_descriptions

    document = describe_pair(item.a, item.b, task, backends=("stats",), options=DescribeOptions(prompt=prompt), pixels=pixels)
    return encode_descriptions(document, "offline")


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
                 image_features: str | None = None, semantics: str | None = None, device: str = "auto",
                 precision: str = "fp32", colour: str = "auto", postprocess: str = "clip", prompt: str | None = None):
        if colour not in COLOUR_MODES:
            raise UsageError(f"unknown colour mode {colour!r}", f"use one of {', '.join(COLOUR_MODES)}")
        if postprocess not in POSTPROCESSING:
            raise UsageError(f"unknown post-processing {postprocess!r}", f"use one of {', '.join(POSTPROCESSING)}")
        self.task = task
        self.name = FUSION_MODELS.canonical(model or default_model(task))
        self.spec: FusionModelSpec = FUSION_MODELS.get(self.name)
        if task not in self.spec.tasks:
            raise FusekitError(f"model {self.name!r} does not serve task {task!r}", f"it serves {', '.join(self.spec.tasks)}; see 'fusekit models'")
        self.colour, self.postprocess, self.prompt = colour, postprocess, prompt
        given = {"text-features": text, "image-features": image_features, "semantics": semantics}
        self.sources: dict[str, GuidanceSource] = {}
        for word in self.spec.guidance:
            kind = GUIDANCE_FILES[word][0]
            self.sources[kind] = GuidanceSource(kind, given[kind])
        for kind, path in given.items():
            if path and kind not in self.sources:
                log.warn(f"model {self.name!r} uses no {KIND_WORDS[kind]}; {path} is ignored")
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

    def _offline_text(self, word: str, item: Item) -> bool:
        """Whether `item`'s text features are made on the fly: no --text and no manifest field, and the weights
        expect the `offline` encoder, whose features need no downloads (the bundled `compact` model's case)."""
        kind = GUIDANCE_FILES[word][0]
        return (word == "text" and self.sources[kind].path is None and not item.fields.get(MANIFEST_FIELDS[kind])
                and self.metadata.get("text_encoder") == "offline")

    def check_guidance_given(self, items: list[Item]) -> None:
        """A model needing guidance without a source for it fails before any work starts; so does a prompt that
        cannot reach the model (its text comes from files, or it takes no text)."""
        if self.prompt or any(item.fields.get("prompt") for item in items):
            if "text" not in self.spec.guidance:
                raise UsageError(f"model {self.name!r} takes no text, so --prompt cannot guide it", "drop --prompt or pick a text-guided model")
            if not all(self._offline_text("text", item) for item in items):
                raise UsageError("--prompt is added to the text fuse makes on the fly, but these pairs have text features from files",
                                 "give the prompt to describe instead: fusekit describe A B --task T --prompt '...' | fusekit encode-text")
        for word in self.spec.guidance:
            kind, option, _ = GUIDANCE_FILES[word]
            field_name = MANIFEST_FIELDS[kind]
            if self.sources[kind].path is None and not all(item.fields.get(field_name) or self._offline_text(word, item) for item in items):
                hint = {
                    "text-features": f"make them with: fusekit describe A B --task {self.task} | fusekit encode-text --encoder {self.metadata.get('text_encoder', 'offline')} -o pair.safetensors",
                    "image-features": "make them with fusekit encode-image",
                    "semantics": "make them with fusekit semantics (TeSG's semantic information generator)",
                }[kind]
                raise UsageError(f"model {self.name!r} needs {KIND_WORDS[kind]} ({option})", hint)

    def load(self, item: Item) -> Pair:
        """Read a pair and its guidance; every problem is a user error naming the file."""
        image_a, image_b = read_image(item.a), read_image(item.b)
        if image_a.shape[:2] != image_b.shape[:2]:
            (ha, wa), (hb, wb) = image_a.shape[:2], image_b.shape[:2]
            raise FusekitError(f"A is {wa}x{ha} but B is {wb}x{hb}", "fusion needs registered pairs of the same size")
        rgb_model = self.spec.colour == "rgb"
        a, b = (self._rgb(image) if rgb_model else to_grey(image) / np.float32(max_value(image)) for image in (image_a, image_b))
        any_colour = is_colour(image_a) or is_colour(image_b)
        rgb_out = rgb_model and (self.colour == "colour" or (self.colour == "auto" and any_colour))
        chroma = chroma_for(self.task, image_a, image_b) if self.colour != "grey" and not rgb_model else None
        if self.colour == "colour" and not rgb_model and chroma is None:
            log.warn(f"{item.name}: no colour source for task {self.task}; writing grey")
        bits = 16 if image_a.dtype == np.uint16 or image_b.dtype == np.uint16 else 8
        return Pair(item, a, b, self._guidance(item, [image_a, image_b]), chroma, rgb_out, bits)

    @staticmethod
    def _rgb(image: np.ndarray) -> np.ndarray:
        image = to_float(image)
        return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image

    def _guidance(self, item: Item, pixels: list[np.ndarray]) -> dict:
        size = pixels[0].shape[:2]
        cache: dict = {}

        def hashes():
            if "hashes" not in cache:
                cache["hashes"] = (sha256_file(item.a), sha256_file(item.b))
            return cache["hashes"]

        guidance = {}
        for word in self.spec.guidance:
            kind, option, names = GUIDANCE_FILES[word]
            if self._offline_text(word, item):
                path, by_hash = f"offline text features of {item.name}", True
                tensors, metadata = offline_text_features(item, self.task, pixels, item.fields.get("prompt") or self.prompt)
            else:
                path, by_hash = self.sources[kind].file_for(item, hashes)
                tensors, metadata = _read_guidance_file(kind, path)
            if not by_hash:
                _check_hashes(path, metadata, hashes, item)
            wanted = {name: tensors.get(name) for name in names}
            missing = [name for name, tensor in wanted.items() if tensor is None]
            if missing:
                raise FusekitError(f"{path} has no {missing[0]!r} tensor, which model {self.name!r} needs", f"re-run {WRITTEN_BY[kind]}")
            _check_features(kind, path, wanted, metadata, self.metadata, self.name)
            if metadata.get("task") and metadata["task"] != self.task:
                log.warn(f"{item.name}: {path} was made for task {metadata['task']!r}, fusing as {self.task!r}")
            if "mask" in wanted:
                if tuple(wanted["mask"].shape) != tuple(size):
                    raise FusekitError(f"{path}: mask is {list(wanted['mask'].shape)}, images are {list(size)}", "re-run the semantic generator on these images")
                wanted["mask"] = wanted["mask"].float()[None]
            guidance.update({name: tensor.float() for name, tensor in wanted.items()})
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

        import torch

        from . import tiling

        if tiling.wanted(self.spec, pairs):  # large images: overlapping tiles, so memory stays bounded
            return [tiling.fuse_tiled(lambda a, b, p=p: self._run_learned([dataclasses.replace(p, a=a, b=b)])[0], p.a, p.b)
                    for p in pairs]

        def batch(arrays):
            return torch.from_numpy(np.stack(arrays)).to(self.device, self.dtype)

        a = batch([p.a for p in pairs])[:, None]
        b = batch([p.b for p in pairs])[:, None]
        guidance = {name: torch.stack([p.guidance[name] for p in pairs]).to(self.device, self.dtype) for name in pairs[0].guidance}
        with torch.inference_mode():
            fused = self.module(a, b, **guidance)
        fused = fused.float().cpu().numpy()
        return [fused[index, 0] for index in range(len(pairs))]


def output_path(item: Item, output: str, single: bool) -> str:
    """Where an item's fused image goes: `output` itself for one pair (``OUTPUT/<name>.png`` when it is a
    folder), else ``OUTDIR/<name>.png`` (or the manifest's ``out``)."""
    if item.fields.get("out"):
        return str(item.fields["out"])
    if single and not os.path.isdir(output):
        return output
    return os.path.join(output, f"{item.name}.png")
