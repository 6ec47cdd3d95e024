"""Describing images in words: the first stage of FILM's and MTIF's text guidance.

`describe_pair(a, b, task, backends)` returns a descriptions document (docs/FORMATS.md). Backends live in the
`DESCRIBERS` registry: ``stats`` (offline default), ``blip2`` (captions), ``florence2`` (dense region captions),
``sam`` (segments), ``vlm`` (paragraph + levels from a local vision-language model that sees the image) and ``llm``
(FILM paragraph + MTIF levels from an OpenAI-compatible endpoint, optionally with the images, or a local LM).
"""

from __future__ import annotations

from . import stats  # noqa: F401  (registers the default backend)
from . import blip2, florence2, llm, sam, vlm  # noqa: F401  (register the model backends; heavy imports are lazy)
from .base import DESCRIBERS, PIPELINE_ORDER, DescribeOptions, ImageInfo
from .cache import default_cache_dir
from .pipeline import Pipeline, backend_names, describe_pair

__all__ = ["DESCRIBERS", "PIPELINE_ORDER", "DescribeOptions", "ImageInfo", "Pipeline", "backend_names",
           "default_cache_dir", "describe_pair"]
