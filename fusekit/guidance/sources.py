"""Where each pair's guidance comes from, the same way for `fuse` and `train`: one source abstraction.

For every guidance kind a model needs (`fusekit.guidance.kinds`), the first source that has the pair wins:

1. the item's own file (a manifest line's ``text`` / ``image_features`` / ``semantics`` field, a VLF ``.npy``);
2. the file or folder given with ``--text`` / ``--image-features`` / ``--semantics`` (one file for every pair,
   or per-pair files matched by pair name or by the image hashes in their metadata: `fusekit.io.pairfiles`);
3. computed with the recipe (a describer + text encoder, or an image encoder), cached under a key made of the
   images' hashes and the backends when a cache folder is given, so a second run reads them back.

A recipe is computed only when asked for (``--describer`` / ``--encoder`` / ``--encoder-model``, ``--image-encoder``
/ ``--image-encoder-model``), recorded by the weights (a
checkpoint from `fusekit train` names the recipe it was trained with), or offline (``stats`` + ``offline``: no
weights to download). Otherwise a missing source is one error naming the exact commands that make the files.
Describers and encoders are built once per command on its device and precision; each image is hashed once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import log
from ..errors import FusekitError, UsageError
from ..io.formats import read_safetensors, write_safetensors
from ..io.images import read_image, rgb_of
from ..io.pairfiles import FileHashes, PairFiles
from ..io.pairs import Item
from .kinds import KINDS, GuidanceKind, check_features, check_hashes, read_guidance

OFFLINE_DESCRIBERS = ("stats",)
OFFLINE_TEXT_ENCODERS = ("offline",)


@dataclass
class GuidanceOptions:
    """The guidance options `fuse` and `train` share (None: the weights' or the model's recipe)."""

    text: str | None = None  # file, or folder of per-pair text-features files
    image_features: str | None = None
    semantics: str | None = None
    describer: str | None = None  # compute text with these describer backends (e.g. "stats")
    encoder: str | None = None  # ... and this text encoder
    encoder_model: str | None = None
    image_encoder: str | None = None  # compute image embeddings with this encoder (e.g. "clip")
    image_encoder_model: str | None = None
    cache: str | None = None  # folder of computed guidance
    task: str = "ivf"
    prompt: str | None = None  # the user's own words, added to computed text (a manifest line's `prompt` wins)

    @property
    def asks_text(self) -> bool:
        """Whether the options ask for text guidance to be computed (any of --describer, --encoder, --encoder-model)."""
        return bool(self.describer or self.encoder or self.encoder_model)

    @property
    def asks_images(self) -> bool:
        return bool(self.image_encoder or self.image_encoder_model)

    def path_for(self, kind: GuidanceKind) -> str | None:
        return {"text-features": self.text, "image-features": self.image_features, "semantics": self.semantics}[kind.file_kind]


@dataclass(frozen=True)
class Recipe:
    """How a model's guidance is computed when no file gives it: describer backends + text encoder, or an image
    encoder. A model spec declares its paper's recipe; a checkpoint records the one it was trained with."""

    describer: str | None = None
    text_encoder: str | None = None
    text_encoder_model: str | None = None
    image_encoder: str | None = None
    image_encoder_model: str | None = None

    @property
    def offline_text(self) -> bool:
        """Text made from the pixels alone: no weights to download."""
        names = [part.strip() for part in (self.describer or "").split(",") if part.strip()]
        return bool(names) and set(names) <= set(OFFLINE_DESCRIBERS) and self.text_encoder in OFFLINE_TEXT_ENCODERS

    def with_options(self, options: GuidanceOptions) -> "Recipe":
        """This recipe with what the options name instead."""
        return Recipe(
            describer=options.describer or self.describer,
            text_encoder=options.encoder or self.text_encoder,
            text_encoder_model=options.encoder_model or (None if options.encoder else self.text_encoder_model),
            image_encoder=options.image_encoder or self.image_encoder,
            image_encoder_model=options.image_encoder_model or (None if options.image_encoder else self.image_encoder_model),
        )

    def metadata(self) -> dict[str, str]:
        """The checkpoint metadata recording this recipe (beside `text_encoder` / `image_encoder`)."""
        values = {"guidance_describer": self.describer, "text_encoder_model": self.text_encoder_model,
                  "guidance_image_encoder": self.image_encoder, "image_encoder_model": self.image_encoder_model}
        return {key: value for key, value in values.items() if value}

    @classmethod
    def from_metadata(cls, metadata: dict, paper: "Recipe") -> "Recipe":
        """The recipe weights were trained with: what their metadata records, else (released or bundled weights)
        the paper's describer — or ``stats`` for weights that expect `offline` text."""
        encoder = metadata.get("text_encoder") or paper.text_encoder
        describer = metadata.get("guidance_describer") or ("stats" if encoder in OFFLINE_TEXT_ENCODERS else paper.describer)
        image_encoder = metadata.get("guidance_image_encoder") or metadata.get("image_encoder") or paper.image_encoder
        return cls(describer, encoder, metadata.get("text_encoder_model") or None, image_encoder,
                   metadata.get("image_encoder_model") or None)

    @staticmethod
    def recorded(metadata: dict) -> bool:
        """Whether weights record the recipe they were trained with (checkpoints of `fusekit train` that computed
        their guidance)."""
        return bool(metadata.get("guidance_describer") or metadata.get("guidance_image_encoder"))

    def command(self, kind: GuidanceKind, task: str) -> str:
        """The commands that make `kind`'s file for one pair with this recipe."""
        if kind.features == "text":
            backends = f" --backend {self.describer}" if self.describer and self.describer != "stats" else ""
            model = _model_option(self.text_encoder_model)
            return (f"fusekit describe A B --task {task}{backends} | fusekit encode-text --encoder {self.text_encoder or 'offline'}{model} "
                    f"-o pair.safetensors, then {kind.option} pair.safetensors")
        if kind.features == "image":
            model = _model_option(self.image_encoder_model)
            return f"fusekit encode-image A B --encoder {self.image_encoder or 'clip'}{model} -o pair.safetensors, then {kind.option} pair.safetensors"
        return f"fusekit semantics A B --task {task} -o pair.safetensors (TeSG's semantic information generator), then {kind.option} pair.safetensors"


def _where(model: str | None) -> dict:
    """An --encoder-model value as encoder options: a local folder (``model_path``) or a Hugging Face id (``model_id``)."""
    if not model:
        return {}
    return {"model_path": model} if os.path.isdir(model) else {"model_id": model}


def _model_option(model: str | None) -> str:
    """The same value as an option of encode-text / encode-image."""
    if not model:
        return ""
    return f" --model-path {model}" if os.path.isdir(model) else f" --model {model}"


@dataclass
class GuidanceInfo:
    """What the features were made with, recorded in the checkpoint so `fuse` can refuse mismatched features."""

    text_encoder: str | None = None
    text_dim: int | None = None
    image_encoder: str | None = None
    image_dim: int | None = None


# --------------------------------------------------------------------------------------------- computing


def _cache_path(cache: str | None, folder: str, parts: dict) -> Path | None:
    """``<cache>/<backends>/<key>.safetensors``: one folder per backend combination, so the folder can be given
    to ``fuse --text`` (matched by image hashes) as it is."""
    if not cache:
        return None
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return Path(cache) / re.sub(r"[^A-Za-z0-9._+-]+", "_", folder) / f"{key}.safetensors"


class ComputedText:
    """Text features made by the recipe's describer backends + text encoder, both built once, on first use."""

    def __init__(self, recipe: Recipe, task: str, device: str, precision: str, cache: str | None, prompt: str | None = None):
        self.recipe, self.task, self.device, self.precision, self.cache = recipe, task, device, precision, cache
        self.prompt = prompt
        self.lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"{self.recipe.describer} + {self.recipe.text_encoder} text features"

    def get(self, item: Item, hashes: tuple[str, str], pixels: list | None) -> tuple[dict, dict, str]:
        r = self.recipe
        prompt = (item.fields.get("prompt") or self.prompt or "").strip()
        key = {"kind": "text", "a": hashes[0], "b": hashes[1], "task": self.task, "describer": r.describer,
               "encoder": r.text_encoder, "model": r.text_encoder_model}
        cache = _cache_path(self.cache, f"{self.task}-{r.describer}-{r.text_encoder}", {**key, "prompt": prompt} if prompt else key)
        if cache is not None and cache.is_file():
            tensors, metadata = _read_all_text(cache)
            return tensors, metadata, str(cache)
        from .text import encode_descriptions

        with self.lock:  # `fuse` loads pairs in background threads; the models run one pair at a time
            images = self.pipeline.load([item.a, item.b], self.task, pixels=pixels, hashes=list(hashes))
            document = self.pipeline.describe([item.a, item.b], self.task, images=images)
            if prompt:
                document["prompt"] = prompt  # as `describe --prompt` writes it; encode-text adds it to every text
            tensors, metadata = encode_descriptions(document, self.encoder)
        if cache is not None:
            write_safetensors(cache, "text-features", tensors, {k: v for k, v in metadata.items() if k != "schema"})
        return {name: tensor.float() for name, tensor in tensors.items()}, metadata, f"{self.label} of {item.name}"

    @functools.cached_property
    def pipeline(self):
        """The describer backends, built on first use (their models load lazily)."""
        from .describe import DescribeOptions, Pipeline

        return Pipeline(tuple(self.recipe.describer.split(",")), DescribeOptions(device=self.device, precision=self.precision))

    @functools.cached_property
    def encoder(self):
        from .text import TextOptions, get_encoder

        options = TextOptions(device=self.device, precision=self.precision, **_where(self.recipe.text_encoder_model))
        return get_encoder(self.recipe.text_encoder or "offline", options)


def _read_all_text(path: Path) -> tuple[dict, dict]:
    """Every tensor of a cached text-features file (the kind's own are picked by the caller)."""
    tensors, metadata = read_safetensors(path, "text-features")
    return {name: tensor.float() for name, tensor in tensors.items()}, metadata


class ComputedImages:
    """Image embeddings made by the recipe's image encoder, built once, on first use."""

    def __init__(self, recipe: Recipe, device: str, precision: str, cache: str | None):
        self.recipe, self.device, self.precision, self.cache = recipe, device, precision, cache
        self.lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"{self.recipe.image_encoder} image features"

    def get(self, item: Item, hashes: tuple[str, str], pixels: list | None) -> tuple[dict, dict, str]:
        r = self.recipe
        cache = _cache_path(self.cache, f"image-{r.image_encoder}", {
            "kind": "image", "a": hashes[0], "b": hashes[1], "encoder": r.image_encoder, "model": r.image_encoder_model})
        if cache is not None and cache.is_file():
            tensors, metadata = read_guidance(KINDS["image_embeds"], cache)
            return tensors, metadata, str(cache)
        pixels = pixels if pixels is not None else [read_image(item.a), read_image(item.b)]
        with self.lock:
            embeds = self.encoder.embed([rgb_of(image) for image in pixels])
        tensors = {"image_embed_a": embeds[0].float(), "image_embed_b": embeds[1].float()}
        metadata = {"encoder": self.encoder.name, "encoder_model": self.encoder.model_id, "dim": str(self.encoder.dim),
                    "image_sha256_a": hashes[0], "image_sha256_b": hashes[1]}
        if cache is not None:
            write_safetensors(cache, "image-features", tensors, metadata)
        return tensors, metadata, f"{self.label} of {item.name}"

    @functools.cached_property
    def encoder(self):
        from .vision import ImageOptions, get_image_encoder

        options = ImageOptions(device=self.device, precision=self.precision, **_where(self.recipe.image_encoder_model))
        return get_image_encoder(self.recipe.image_encoder, options)


# ------------------------------------------------------------------------------------------- the sources


@dataclass
class _KindSource:
    """The sources of one guidance kind, in the order they are tried."""

    kind: GuidanceKind
    path: str | None
    computed: ComputedText | ComputedImages | None
    _files: PairFiles | None = field(default=None, repr=False)

    def files(self) -> PairFiles:
        if self._files is None:
            self._files = PairFiles(self.path, self.kind.suffixes)
        return self._files


class PairGuidance:
    """The guidance tensors of every pair for the kinds a model needs, from files or computed: `fuse` and `train`
    both build one per command.

    `recipe` is how to compute guidance no file gives, `computable` whether that may happen without being asked
    (see the module docs); `expected` is the weights' metadata that features are checked against (`fuse`)."""

    def __init__(self, words: tuple[str, ...], options: GuidanceOptions, recipe: Recipe, *, task: str, model: str,
                 computable: bool = False, expected: dict | None = None, device: str = "auto", precision: str = "fp32",
                 hashes: FileHashes | None = None):
        self.recipe, self.task, self.model, self.expected = recipe, task, model, expected
        self.hashes = hashes or FileHashes()
        self.info = GuidanceInfo()
        self.computed_features: set[str] = set()  # "text" / "image": computed (or read from the cache) for some pair
        self.sources: list[_KindSource] = []
        for word in words:
            kind = KINDS[word]
            computed = None
            if kind.features == "text" and recipe.describer and (computable or options.asks_text or recipe.offline_text):
                computed = ComputedText(recipe, task, device, precision, options.cache, options.prompt)
            elif kind.features == "image" and recipe.image_encoder and (computable or options.asks_images):
                computed = ComputedImages(recipe, device, precision, options.cache)
            self.sources.append(_KindSource(kind, options.path_for(kind), computed))

    def recipe_used(self) -> Recipe:
        """The parts of the recipe that made some pair's guidance (what a checkpoint records)."""
        r, used = self.recipe, self.computed_features
        text, image = "text" in used, "image" in used
        return Recipe(r.describer if text else None, r.text_encoder if text else None, r.text_encoder_model if text else None,
                      r.image_encoder if image else None, r.image_encoder_model if image else None)

    def check_available(self, items: list[Item]) -> None:
        """Fail before any work, in one line naming the commands that make the files, when a kind has no source."""
        for source in self.sources:
            kind = source.kind
            if source.path or source.computed or all(item.fields.get(kind.manifest_field) for item in items):
                continue
            how = [self.recipe.command(kind, self.task)]
            if kind.features == "text":
                how.append("or add --describer stats --encoder offline to compute offline text (not the paper's)")
            elif kind.features == "image":
                how.append(f"or add --image-encoder {self.recipe.image_encoder or 'clip'} to compute them")
            raise UsageError(f"model {self.model!r} needs {kind.words} ({kind.option}) and none were given", " ".join(how))

    def check_prompt(self, items: list[Item], given: str | None) -> None:
        """A prompt (--prompt or a manifest line's) only reaches a model through text computed here: refuse it for
        a model without text guidance or when the text comes from files."""
        if not (given or any(item.fields.get("prompt") for item in items)):
            return
        text = [source for source in self.sources if source.kind.features == "text"]
        if not text:
            raise UsageError(f"model {self.model!r} takes no text, so --prompt cannot guide it", "drop --prompt or pick a text-guided model")
        if any(source.computed is None or source.path or any(item.fields.get(source.kind.manifest_field) for item in items)
               for source in text):
            raise UsageError("--prompt is added to the text fuse makes on the fly, but these pairs have text features from files",
                             "give the prompt to describe instead: fusekit describe A B --task T --prompt '...' | fusekit encode-text")

    def for_item(self, item: Item, pixels: list | None = None, size: tuple[int, int] | None = None) -> dict:
        """name → float32 torch tensor (no batch axis) for one pair; `pixels` [A, B] when decoded already, `size`
        (height, width) of the images for the spatial checks."""
        if size is None and pixels is not None:
            size = tuple(pixels[0].shape[:2])
        guidance = {}
        for source in self.sources:
            tensors, where = self._one(source, item, pixels)
            for name in source.kind.spatial:
                if size is not None and tuple(tensors[name].shape) != tuple(size):
                    raise FusekitError(f"{where}: {name} is {list(tensors[name].shape)}, images are {list(size)}",
                                       f"re-run {source.kind.made_by} on these images")
            guidance.update(tensors)
        return guidance

    def _one(self, source: _KindSource, item: Item, pixels: list | None) -> tuple[dict, str]:
        kind = source.kind
        path, by_hash = item.fields.get(kind.manifest_field), False
        if not path and source.path:
            found = source.files().find(item.name, lambda: self.hashes.pair(item.a, item.b))
            if found:
                path, by_hash = str(found[0]), found[1]
            elif source.computed is None:
                raise FusekitError(f"no {kind.words} for pair {item.name!r} in {source.path}",
                                   f"name it {item.name}.safetensors or make it with {kind.made_by}")
        if path:
            tensors, metadata = read_guidance(kind, path, f"model {self.model!r}")
            if not by_hash:
                check_hashes(str(path), metadata, self.hashes.pair(item.a, item.b), item.name)
            where = str(path)
        else:
            tensors, metadata, where = source.computed.get(item, self.hashes.pair(item.a, item.b), pixels)
            self.computed_features.add(kind.features)
            missing = [name for name in kind.tensors if name not in tensors]
            if missing:
                raise FusekitError(f"the {source.computed.label} have no {missing[0]!r} tensor, which model {self.model!r} needs",
                                   "use a describer that writes the levels the model needs (e.g. stats or llm)")
            tensors = {name: tensors[name] for name in kind.tensors}
        if self.expected is not None:
            check_features(kind, where, tensors, metadata, self.expected, self.model)
        if metadata.get("task") and metadata["task"] != self.task:
            log.warn(f"{item.name}: {where} was made for task {metadata['task']!r}, used for {self.task!r}")
        self._note(kind, metadata, tensors)
        return tensors, where

    def _note(self, kind: GuidanceKind, metadata: dict, tensors: dict) -> None:
        """Record encoder and width once; refuse a mix of encoders or widths across pairs."""
        if kind.features is None:
            return
        encoder, dim = metadata.get("encoder") or "unknown", int(tensors[kind.tensors[0]].shape[-1])
        seen = (getattr(self.info, f"{kind.features}_encoder"), getattr(self.info, f"{kind.features}_dim"))
        if seen[0] is None:
            setattr(self.info, f"{kind.features}_encoder", encoder)
            setattr(self.info, f"{kind.features}_dim", dim)
        elif seen != (encoder, dim):
            raise FusekitError(f"{kind.words} differ between pairs ({seen[0]}/{seen[1]} vs {encoder}/{dim})",
                               "encode every pair with the same encoder")
