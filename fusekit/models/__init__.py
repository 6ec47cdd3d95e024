"""Fusion models. Importing this package registers fusekit's specs (`specs.py`, torch-free); each network or
fusion function is imported the first time a model is built or run, and plugins' models come from the
``fusekit.models`` entry-point group."""

from __future__ import annotations

from . import specs  # noqa: F401  (registers the built-in specs)
from .registry import FUSION_MODELS, FusionModelSpec, register

__all__ = ["FUSION_MODELS", "FusionModelSpec", "register"]
