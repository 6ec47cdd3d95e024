"""The guidance tensors each training pair needs: from files, or computed once by a describer + encoder and cached.

A model's `spec.guidance` names what it needs (the `GUIDANCE_SOURCES` words); this module turns them into the
tensors its `forward` takes, per pair, as numpy arrays:

- ``text``        → ``text`` [L, D]  (text-features file, or a VLF ``.npy`` [1, L, D] / [L, D])
- ``text_levels`` → ``text_detail``, ``text_structure``, ``text_semantic`` [L, D]  (text-features file)
- ``image_embeds`` → ``image_embed_a``, ``image_embed_b`` [D]  (image-features file)
- ``semantics``   → ``mask`` [H, W] (spatial: cropped with the images) and ``text_semantics`` [L, D]

Where they come from, first match wins: the item's own field (a manifest's ``text`` / ``image_features`` /
``semantics``, the VLF feature file); a folder given with ``--text`` / ``--image-features`` / ``--semantics``
holding one file per pair, matched by the pair's name (``<dataset>/<name>.safetensors`` or ``<name>.safetensors``)
or by the image hashes in the files' metadata; or, for text, computed on the fly with
`fusekit.guidance.describe.describe_pair` + `fusekit.guidance.text.encode_descriptions` and, for image embeddings,
`fusekit.guidance.vision.encode_images`, cached under a key made of the two images' hashes and the backend names so a
second run (or another rank) reads them back instead of recomputing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FusekitError
from ..io.formats import read_safetensors, read_vlf_text_features, sha256_file, write_safetensors
from ..io.pairfiles import PairFiles
from ..io.pairs import Item

TENSORS_FOR = {
    "text": ("text",),
    "text_levels": ("text_detail", "text_structure", "text_semantic"),
    "image_embeds": ("image_embed_a", "image_embed_b"),
    "semantics": ("mask", "text_semantics"),
}
KIND_FOR = {"text": "text-features", "text_levels": "text-features", "image_embeds": "image-features", "semantics": "semantics"}
FIELD_FOR = {"text": "text", "text_levels": "text", "image_embeds": "image_features", "semantics": "semantics"}
OPTION_FOR = {"text": "--text", "text_levels": "--text", "image_embeds": "--image-features", "semantics": "--semantics"}
SPATIAL_GUIDANCE = ("mask",)


@dataclass
class GuidanceOptions:
    """Where guidance comes from (the ``fusekit train`` options)."""

    text: str | None = None  # folder (or single file) of text-features files
    image_features: str | None = None
    semantics: str | None = None
    describer: str | None = None  # compute text on the fly with this describer (e.g. "stats")
    encoder: str = "offline"
    encoder_model: str | None = None
    image_encoder: str | None = None  # compute image embeddings on the fly (e.g. "clip")
    image_encoder_model: str | None = None
    cache: str | None = None  # folder of computed guidance
    task: str = "ivf"

    def folder_for(self, source: str) -> str | None:
        return {"text": self.text, "text_levels": self.text, "image_embeds": self.image_features, "semantics": self.semantics}[source]


@dataclass
class GuidanceInfo:
    """What the features were made with, recorded in the checkpoint so `fuse` can refuse mismatched features."""

    text_encoder: str | None = None
    text_dim: int | None = None
    image_encoder: str | None = None
    image_dim: int | None = None


def read_guidance_file(path: str | Path, source: str) -> tuple[dict[str, np.ndarray], dict]:
    """The tensors `source` needs from one file (safetensors of the right kind, or a VLF ``.npy`` text feature)."""
    path = Path(path)
    if path.suffix == ".npy":
        if source != "text":
            raise FusekitError(f"{path}: a .npy file holds only FILM/VLF text features", f"give {OPTION_FOR[source]} safetensors files")
        tensors, meta = read_vlf_text_features(path)
        return {"text": tensors["text"].numpy()}, meta
    tensors, meta = read_safetensors(path, KIND_FOR[source])
    aliases = {"image_embed_a": "embed_a", "image_embed_b": "embed_b"}
    out = {}
    for name in TENSORS_FOR[source]:
        tensor = tensors.get(name, tensors.get(aliases.get(name, "")))
        if tensor is None:
            raise FusekitError(f"{path} has no '{name}' tensor", f"re-make it with {'fusekit encode-image' if source == 'image_embeds' else 'fusekit encode-text'}")
        out[name] = tensor.float().numpy()
    return out, meta


class GuidanceProvider:
    """Loads or computes the guidance of every pair for the sources a model needs."""

    def __init__(self, sources: tuple[str, ...], options: GuidanceOptions):
        self.sources, self.options = sources, options
        self.indexes = {s: PairFiles(options.folder_for(s)) for s in sources if options.folder_for(s)}
        self.info = GuidanceInfo()

    def check_available(self, items: list[Item]) -> None:
        """Fail early, in one line, when some source has no way to be found for these items."""
        for source in self.sources:
            field_name = FIELD_FOR[source]
            if source in self.indexes or all(item.fields.get(field_name) for item in items):
                continue
            if source in ("text", "text_levels") and self.options.describer:
                continue
            if source == "image_embeds" and self.options.image_encoder:
                continue
            how = {
                "text": "--text FOLDER (from fusekit encode-text) or --describer stats --encoder offline",
                "text_levels": "--text FOLDER of per-level features or --describer with a multi-level backend",
                "image_embeds": "--image-features FOLDER (from fusekit encode-image) or --image-encoder clip",
                "semantics": "--semantics FOLDER (from fusekit semantics)",
            }[source]
            raise FusekitError(f"the model needs '{source}' guidance and none was given", f"use {how}")

    def for_item(self, item: Item) -> dict[str, np.ndarray]:
        hashes = (sha256_file(item.a), sha256_file(item.b))
        out: dict[str, np.ndarray] = {}
        for source in self.sources:
            tensors, meta = self._one(source, item, hashes)
            self._note(source, meta, tensors)
            out.update(tensors)
        return out

    def _one(self, source: str, item: Item, hashes: tuple[str, str]) -> tuple[dict, dict]:
        path = item.fields.get(FIELD_FOR[source])
        if not path and source in self.indexes:
            found = self.indexes[source].find(item.name, lambda: hashes)
            path = str(found[0]) if found else None
        if path:
            return read_guidance_file(path, source)
        if source in ("text", "text_levels") and self.options.describer:
            return self._computed_text(source, item, hashes)
        if source == "image_embeds" and self.options.image_encoder:
            return self._computed_images(item, hashes)
        raise FusekitError(f"no {source} guidance for pair {item.name}", f"add it to the folder given with {OPTION_FOR[source]}")

    def _cache_path(self, folder: str, parts: dict) -> Path | None:
        """``<cache>/<backends>/<key>.safetensors``: one folder per backend combination, so the folder can be given
        to ``fuse --text`` (matched by image hashes) as it is."""
        if not self.options.cache:
            return None
        key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", folder)
        return Path(self.options.cache) / safe / f"{key}.safetensors"

    def _computed_text(self, source: str, item: Item, hashes: tuple[str, str]) -> tuple[dict, dict]:
        o = self.options
        cache = self._cache_path(f"{o.task}-{o.describer}-{o.encoder}", {"kind": "text", "a": hashes[0], "b": hashes[1], "task": o.task,
                                  "describer": o.describer, "encoder": o.encoder, "model": o.encoder_model})
        if cache is not None and cache.is_file():
            return read_guidance_file(cache, source)
        from ..guidance.describe import describe_pair
        from ..guidance.text import encode_descriptions

        document = describe_pair(item.a, item.b, o.task, backends=tuple(o.describer.split(",")))
        kwargs = {"model_path": o.encoder_model} if o.encoder_model else {}
        tensors, meta = encode_descriptions(document, encoder=o.encoder, **kwargs)
        if cache is not None:
            write_safetensors(cache, "text-features", tensors, {k: v for k, v in meta.items() if k != "schema"})
        picked = {}
        for name in TENSORS_FOR[source]:
            if name not in tensors:
                raise FusekitError(f"describer {o.describer!r} + encoder {o.encoder!r} made no '{name}' tensor", "use a describer that writes the levels the model needs")
            picked[name] = tensors[name].float().numpy()
        return picked, meta

    def _computed_images(self, item: Item, hashes: tuple[str, str]) -> tuple[dict, dict]:
        o = self.options
        cache = self._cache_path(f"image-{o.image_encoder}", {"kind": "image", "a": hashes[0], "b": hashes[1], "encoder": o.image_encoder, "model": o.image_encoder_model})
        if cache is not None and cache.is_file():
            return read_guidance_file(cache, "image_embeds")
        from ..guidance.vision import encode_images

        kwargs = {"model_path": o.image_encoder_model} if o.image_encoder_model else {}
        tensors = encode_images([item.a, item.b], encoder=o.image_encoder, **kwargs)
        embeds = {"image_embed_a": tensors["image_embed_a"], "image_embed_b": tensors["image_embed_b"]} if "image_embed_a" in tensors else dict(zip(("image_embed_a", "image_embed_b"), tensors.values()))
        meta = {"encoder": o.image_encoder, "encoder_model": o.image_encoder_model or "", "dim": str(embeds["image_embed_a"].shape[-1]),
                "image_sha256_a": hashes[0], "image_sha256_b": hashes[1]}
        if cache is not None:
            write_safetensors(cache, "image-features", embeds, meta)
        return {k: v.float().numpy().reshape(-1) for k, v in embeds.items()}, meta

    def _note(self, source: str, meta: dict, tensors: dict) -> None:
        """Record encoder and dimension once; refuse a mix of encoders or dimensions across pairs."""
        info = self.info
        if source in ("text", "text_levels"):
            name = TENSORS_FOR[source][0]
            encoder, dim = meta.get("encoder") or "unknown", int(tensors[name].shape[-1])
            if info.text_encoder is None:
                info.text_encoder, info.text_dim = encoder, dim
            elif (info.text_encoder, info.text_dim) != (encoder, dim):
                raise FusekitError(f"text features differ between pairs ({info.text_encoder}/{info.text_dim} vs {encoder}/{dim})", "encode every pair with the same encoder")
        elif source == "image_embeds":
            encoder, dim = meta.get("encoder") or "unknown", int(tensors["image_embed_a"].shape[-1])
            if info.image_encoder is None:
                info.image_encoder, info.image_dim = encoder, dim
            elif (info.image_encoder, info.image_dim) != (encoder, dim):
                raise FusekitError(f"image features differ between pairs ({info.image_encoder}/{info.image_dim} vs {encoder}/{dim})", "encode every pair with the same encoder")


def default_cache_dir() -> str:
    """Where computed guidance is kept between runs: ``$FUSEKIT_CACHE/train-guidance`` or
    ``$XDG_CACHE_HOME/fusekit/train-guidance`` (``~/.cache/fusekit/train-guidance``)."""
    base = os.environ.get("FUSEKIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fusekit")
    return os.path.join(base, "train-guidance")
