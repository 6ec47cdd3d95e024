"""Describing images in words: the first stage of FILM's and MTIF's text guidance.

`describe_pair(a, b, task, backends)` returns a descriptions document (docs/FORMATS.md). Backends live in the
`DESCRIBERS` registry (`base.py`; `fusekit describe --list`): ``stats`` (offline default), ``blip2`` (captions),
``florence2`` (dense region captions), ``sam`` (segments), ``vlm`` (paragraph + levels from a local vision-language model that sees the image) and
``llm`` (FILM paragraph + MTIF levels from an OpenAI-compatible endpoint, optionally with the images, or a local LM), plus those of installed plugins. Importing this package imports no
backend: each is imported when first used.
"""

from __future__ import annotations

from ...registry import lazy_exports
from .base import DESCRIBERS, PIPELINE_ORDER, DescribeOptions, ImageInfo

__getattr__ = lazy_exports(__name__, {"Pipeline": "pipeline", "backend_names": "pipeline", "describe_pair": "pipeline",
                                      "default_cache_dir": "cache"})

__all__ = ["DESCRIBERS", "PIPELINE_ORDER", "DescribeOptions", "ImageInfo", "Pipeline", "backend_names",
           "default_cache_dir", "describe_pair"]
