"""Bringing a model and its guidance together, the same way for `fuse` and `train`.

A model spec declares the guidance it needs (`spec.guidance`) and its paper's recipe (`spec.describer` +
`spec.text_encoder`, or `spec.image_encoder`); a checkpoint records the recipe it was trained with. This module
turns those plus the shared guidance options into one `fusekit.guidance.sources.PairGuidance` per command.
"""

from __future__ import annotations

import os

from .. import log
from ..guidance.sources import GuidanceInfo, GuidanceOptions, PairGuidance, Recipe

__all__ = ["GuidanceInfo", "GuidanceOptions", "PairGuidance", "Recipe", "default_cache_dir", "fuse_guidance",
           "paper_recipe", "train_guidance", "warn_if_not_paper"]


def paper_recipe(spec) -> Recipe:
    """The guidance recipe of the model's paper (fusekit's own for `compact`), from its spec."""
    return Recipe(describer=spec.describer, text_encoder=spec.text_encoder, image_encoder=spec.image_encoder)


def fuse_guidance(spec, options: GuidanceOptions, task: str, metadata: dict, device: str, precision: str) -> PairGuidance:
    """`fuse`'s guidance: files when given, else the recipe the weights were trained with (`metadata`, the
    checkpoint's), computed when the weights record it or it is offline; features are checked against the weights."""
    recipe = Recipe.from_metadata(metadata, paper_recipe(spec)).with_options(options)
    return PairGuidance(spec.guidance, options, recipe, task=task, model=spec.name, computable=Recipe.recorded(metadata),
                        expected=metadata, device=device, precision=precision)


def train_guidance(spec, options: GuidanceOptions, task: str, device: str, precision: str, hashes=None) -> PairGuidance:
    """`train`'s guidance: files when given, else the model's recipe with what the options change, computed (and
    cached) when asked for (--describer / --image-encoder) or offline, so `train --model compact` needs no options."""
    options.cache = options.cache or default_cache_dir()
    recipe = paper_recipe(spec).with_options(options)
    return PairGuidance(spec.guidance, options, recipe, task=task, model=spec.name, device=device, precision=precision,
                        hashes=hashes)


def warn_if_not_paper(spec, info: GuidanceInfo) -> None:
    """One warning when the guidance trained on is not the paper's (e.g. `film` on `offline` text)."""
    paper = paper_recipe(spec)
    differences = []
    if paper.text_encoder and info.text_encoder and info.text_encoder != paper.text_encoder:
        differences.append(f"{info.text_encoder} text features (the paper's: {paper.text_encoder})")
    if paper.image_encoder and info.image_encoder and info.image_encoder != paper.image_encoder:
        differences.append(f"{info.image_encoder} image features (the paper's: {paper.image_encoder})")
    if differences:
        log.warn(f"training {spec.name} on {' and '.join(differences)}: results will not be the paper's")


def default_cache_dir() -> str:
    """Where computed guidance is kept between runs: ``$FUSEKIT_CACHE/train-guidance`` or
    ``$XDG_CACHE_HOME/fusekit/train-guidance`` (``~/.cache/fusekit/train-guidance``)."""
    base = os.environ.get("FUSEKIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fusekit")
    return os.path.join(base, "train-guidance")
