"""Training losses of the papers fusekit implements, built from a few shared differentiable pieces.

The pieces (`sobel_gradient`, `ssim`, `intensity_loss`, `gradient_loss`, `ssim_loss`) are written once here so
every model's loss uses the same arithmetic; model-specific losses (MTIF, MGFusion, TeSG) live beside their model
and are declared in `LOSSES` by name (imported on first use). A loss has the signature

    loss_fn(outputs: dict, batch: dict, task: str) -> (total: Tensor, parts: dict[str, float])

`outputs` is what the model's `training_outputs` returned (at least ``fused`` [B, 1, H, W]); `batch` holds ``a``,
``b`` [B, 1, H, W] grey in [0, 1], the guidance tensors and, for colour sources, ``a_rgb``/``b_rgb`` [B, 3, H, W].
Losses are computed in float32 whatever precision the forward pass ran in (mixed precision keeps the loss exact).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..registry import Registry

LOSSES: Registry = Registry("loss", "each model names its default loss in 'fusekit models --json'")
# Losses that live beside their model, imported (with it) when training asks for them.
LOSSES.add_lazy("compact", "fusekit.models.compact_loss:compact_loss")
LOSSES.add_lazy("mtif", "fusekit.models.mtif_loss:multi_grained_loss")
LOSSES.add_lazy("mgfusion", "fusekit.models.mgfusion:mgfusion_loss")
LOSSES.add_lazy("tesg", "fusekit.models.tesg:tesg_loss")

# FILM's `Sobelxy` (released code, inherited from CDDFuse): cross-correlation kernels, zero padding 1.
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


def sobel_gradient(x: torch.Tensor) -> torch.Tensor:
    """|Sobel_x * x| + |Sobel_y * x| per channel, zero padding, same size as `x` ([B, C, H, W])."""
    channels = x.shape[1]
    kernels = torch.tensor((_SOBEL_X, _SOBEL_Y), dtype=x.dtype, device=x.device)  # [2, 3, 3]
    weight = kernels.unsqueeze(1).repeat(channels, 1, 1, 1)  # [2C, 1, 3, 3]: x then y kernel per channel
    response = F.conv2d(x, weight, padding=1, groups=channels)  # [B, 2C, H, W]
    response = response.view(x.shape[0], channels, 2, *x.shape[2:])
    return response.abs().sum(dim=2)


@functools.lru_cache(maxsize=8)
def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _blur(x: torch.Tensor, window: torch.Tensor, padding: str) -> torch.Tensor:
    """Separable gaussian filter over H and W of [B, C, H, W], per channel; ``same`` zero-pads, ``valid`` does not."""
    channels = x.shape[1]
    w = window.to(dtype=x.dtype, device=x.device)
    pad = w.numel() // 2 if padding == "same" else 0
    x = F.conv2d(x, w.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), padding=(0, pad), groups=channels)
    return F.conv2d(x, w.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), padding=(pad, 0), groups=channels)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
             data_range: float = 1.0, padding: str = "same", k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """The SSIM index (Wang et al. 2004) at every pixel of [B, C, H, W] inputs.

    ``padding="same"`` zero-pads the gaussian window (window//2), as the SSIM helper in FILM's released code and
    the pytorch-ssim package most fusion code copies; ``"valid"`` drops border windows (pytorch_msssim style) and
    needs images of at least `window_size` on each side.
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim of different shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if padding not in ("same", "valid"):
        raise ValueError(f"ssim padding must be 'same' or 'valid', not {padding!r}")
    if padding == "valid" and min(x.shape[-2:]) < window_size:
        raise ValueError(f"valid ssim needs images of at least {window_size}x{window_size}, got {tuple(x.shape[-2:])}")
    window = _gaussian_1d(window_size, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _blur(x, window, padding), _blur(y, window, padding)
    var_x = _blur(x * x, window, padding) - mu_x**2
    var_y = _blur(y * y, window, padding) - mu_y**2
    cov = _blur(x * y, window, padding) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
         data_range: float = 1.0, padding: str = "same") -> torch.Tensor:
    """Mean SSIM over the batch (a scalar), differentiable in both arguments."""
    return ssim_map(x, y, window_size, sigma, data_range, padding).mean()


def intensity_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, target: str = "max") -> torch.Tensor:
    """(1/HW)·‖F − max(A, B)‖₁ (``target="max"``) or ‖F − mean(A, B)‖₁ (``"mean"``), averaged over the batch."""
    if target == "max":
        reference = torch.maximum(a, b)
    elif target == "mean":
        reference = (a + b) / 2
    else:
        raise ValueError(f"intensity target must be 'max' or 'mean', not {target!r}")
    return F.l1_loss(fused, reference)


def gradient_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(1/HW)·‖ |∇F| − max(|∇A|, |∇B|) ‖₁ with FILM's Sobel gradient."""
    return F.l1_loss(sobel_gradient(fused), torch.maximum(sobel_gradient(a), sobel_gradient(b)))


def ssim_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """2 − SSIM(A, F) − SSIM(B, F)."""
    return 2 - ssim(a, fused) - ssim(b, fused)


# FILM §5 "Loss Function" (TGIF uses the same): L = L_int + α1·L_grad + α2·L_SSIM, per task
# (intensity target, α1, α2). The paper trains no MIF model ("MIF does not need fine-tuning": the IVF model is
# used), so training for MIF uses the IVF form, the one that keeps the brighter (functional) structure.
FILM_WEIGHTS: dict[str, tuple[str, float, float]] = {
    "ivf": ("max", 20.0, 0.0),
    "mif": ("max", 20.0, 0.0),
    "mef": ("mean", 500.0, 1.0),
    "mff": ("mean", 300.0, 1.0),
}


def film_task_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, task: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """FILM's total loss for `task` and its unweighted terms (tensors)."""
    target, alpha1, alpha2 = FILM_WEIGHTS[task]
    parts = {"int": intensity_loss(fused, a, b, target), "grad": gradient_loss(fused, a, b)}
    total = parts["int"] + alpha1 * parts["grad"]
    if alpha2:
        parts["ssim"] = ssim_loss(fused, a, b)
        total = total + alpha2 * parts["ssim"]
    return total, parts


def as_float32(outputs: dict, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(fused, a, b) in float32, so losses are exact under mixed precision."""
    return outputs["fused"].float(), batch["a"].float(), batch["b"].float()


@LOSSES.register("film")
def film_loss(outputs: dict, batch: dict, task: str) -> tuple[torch.Tensor, dict[str, float]]:
    """FILM's (and TGIF's) per-task loss: IVF/MIF ``L1(F, max) + 20·grad``; MEF/MFF ``L1(F, mean) + α1·grad +
    α2·(2 − SSIM(A,F) − SSIM(B,F))`` with {α1, α2} = {500, 1} (MEF) and {300, 1} (MFF)."""
    fused, a, b = as_float32(outputs, batch)
    total, parts = film_task_loss(fused, a, b, task)
    return total, {name: float(value.detach()) for name, value in parts.items()}
