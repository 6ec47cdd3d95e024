"""Turning what the caller passes (numpy arrays, torch tensors, colour or grey) into the grey float64 triples that
the metric definitions work on, the way each convention's reference does it.

A `Triple` also memoises intermediate results (centred images, differences, grey-level codes, a float32 stack of
the three images) so that several metrics of one triple share the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import FusekitError
from ..io.images import to_grey

# MATLAB rgb2gray weights (VIFB converts an RGB source this way when the fused image is grey).
_MATLAB_GREY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


@dataclass
class Triple:
    f: np.ndarray
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    memo: dict = field(default_factory=dict)

    def cached(self, key: str, make: Callable[[], object]):
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


def is_cuda_tensor(image) -> bool:
    """A torch tensor on a CUDA device (checked without importing torch)."""
    device = getattr(image, "device", None)
    return getattr(device, "type", None) == "cuda" and hasattr(image, "detach")


def as_array(image, role: str) -> np.ndarray:
    """A numpy view of `image`: [H, W] or [H, W, 3]. Torch tensors ([H, W], [C, H, W], [1, C, H, W]) are copied to
    the CPU; uint16 is rescaled to the 0–255 scale the metrics are defined on."""
    if hasattr(image, "detach") and hasattr(image, "cpu"):
        tensor = image.detach().cpu()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3):
            tensor = tensor.permute(1, 2, 0)
        array = tensor.double().numpy() if tensor.is_floating_point() else tensor.numpy()
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise FusekitError(f"{role} image has shape {tuple(array.shape)}", "pass [H, W] grey or [H, W, 3] RGB (tensors: [C, H, W])")
    if array.dtype == np.uint16:
        array = array.astype(np.float64) * (255.0 / 65535.0)
    if array.dtype.kind not in "uif":
        raise FusekitError(f"{role} image has {array.dtype} pixels", "pass numbers on the 0-255 scale")
    return array


def evaluator_grey(image: np.ndarray) -> np.ndarray:
    """The evaluator reads everything as grey: colour → cv2 BGR2GRAY in float32, rounded (``to_grey``)."""
    if image.ndim == 3:
        return to_grey(image, rounded=True).astype(np.float64)
    return image.astype(np.float64)


def matlab_grey(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray``: rounded (half away from zero) for integer input, not for float input."""
    x = image.astype(np.float64)
    grey = x[..., 0] * _MATLAB_GREY[0] + x[..., 1] * _MATLAB_GREY[1] + x[..., 2] * _MATLAB_GREY[2]
    return np.floor(grey + 0.5) if image.dtype.kind in "ui" else grey


def check_sizes(f: np.ndarray, a: np.ndarray | None, b: np.ndarray | None) -> None:
    for role, source in (("A", a), ("B", b)):
        if source is not None and source.shape[:2] != f.shape[:2]:
            raise FusekitError(
                f"size mismatch: fused is {f.shape[1]}x{f.shape[0]}, {role} is {source.shape[1]}x{source.shape[0]}",
                "metrics compare images of the same size",
            )
    if min(f.shape[:2]) < 2:  # no pixel differences, gradients or windows: every metric but EN would be NaN
        raise FusekitError(f"fused is {f.shape[1]}x{f.shape[0]}: too small for metrics", "metrics need images of at least 2x2 pixels")


def evaluator_triples(f, a, b) -> list[Triple]:
    """One grey triple, every image converted as the evaluator reads files (8-bit inputs are known to give grey
    levels 0..255, which lets some metrics use exact float32 sums without checking)."""
    triple = Triple(evaluator_grey(f), None if a is None else evaluator_grey(a), None if b is None else evaluator_grey(b))
    if all(x is not None and x.dtype == np.uint8 for x in (f, a, b)):
        triple.memo["grey-levels"] = True
    return [triple]


def vifb_triples(f, a, b) -> list[Triple]:
    """VIFB's colour handling: a colour F gives one triple per channel (a grey source is reused for each); a grey
    F with a colour source converts that source with MATLAB ``rgb2gray``."""
    if f.ndim == 2:
        def grey(x):
            return None if x is None else (matlab_grey(x) if x.ndim == 3 else x.astype(np.float64))

        return [Triple(f.astype(np.float64), grey(a), grey(b))]

    def channel(x, k):
        if x is None:
            return None
        return (x[..., k] if x.ndim == 3 else x).astype(np.float64)

    return [Triple(channel(f, k), channel(a, k), channel(b, k)) for k in range(3)]
