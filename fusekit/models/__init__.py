"""Fusion models. Importing this package registers every model module listed in `MODEL_MODULES`."""

from __future__ import annotations

import importlib

from .registry import FUSION_MODELS, FusionModelSpec, register

# One line per model module; a new method is one module plus one line here.
MODEL_MODULES: tuple[str, ...] = ("film", "tgif", "mtif", "mgfusion", "tesg", "compact", "baselines")

for _module in MODEL_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["FUSION_MODELS", "FusionModelSpec", "register"]
