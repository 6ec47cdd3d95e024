"""fusekit's own compact text-guided fusion network: a few MB, fast on a laptop CPU, any input size.

Why this shape: the expensive part of text-guided fusion networks such as FILM is attention and transformer blocks
at full resolution. Here the text only steers *where* to take what from, which is a low-frequency decision, so the
text meets the image on a feature map 8x smaller than the input, and the full-resolution path is a handful of
narrow convolutions:

1. Encoder (full resolution): two 3x3 convolutions over [A, B] → `channels` features.
2. Context (1/8 resolution): two strided convolutions and a pooling step give a low-resolution map; each of its
   pixels is a query of a multi-head cross-attention over the text tokens (projected from any encoder's width,
   `text_dim`, to `context_channels`), whose output is added to it (residual), followed by a 3x3 convolution.
3. Decoder (full resolution): the context is upsampled (bilinear) and concatenated with the encoder features; two
   3x3 convolutions predict a per-pixel weight logit w and a detail residual r, and the fused image is
   ``clip(σ(w)·A + (1 − σ(w))·B + r, 0, 1)``. The last convolution starts at zero, so an untrained model outputs the
   mean of A and B and training only has to learn the departures from it.

Guidance: ``text`` [B, L, text_dim], pair tokens as `fusekit encode-text` writes them (any L). Bundled weights
(one file per task in fusekit/weights/, trained on shared/train with the offline `stats` describer and `offline`
encoder, see docs/MODELS.md and `make weights`) expect 768-d `offline` features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .registry import FusionModelSpec, register

TASKS = ("ivf", "mif", "mef", "mff")


@dataclass
class CompactConfig:
    text_dim: int = 768  # width of the text features (offline and BLIP-2 encoders: 768)
    channels: int = 16  # full-resolution feature channels
    context_channels: int = 32  # channels of the 1/8-resolution map the text attends with
    heads: int = 4  # cross-attention heads (must divide context_channels)
    downsample: int = 8  # input size / context-map size (a power of two ≥ 4)


class CompactFusion(nn.Module):
    """forward(a, b, text) → fused; a, b: [B, 1, H, W] in [0, 1]; text: [B, L, text_dim]."""

    def __init__(self, config: CompactConfig):
        super().__init__()
        if config.context_channels % config.heads:
            raise ValueError(f"context_channels {config.context_channels} is not a multiple of heads {config.heads}")
        if config.downsample < 4 or config.downsample & (config.downsample - 1):
            raise ValueError(f"downsample must be a power of two ≥ 4, not {config.downsample}")
        self.config = config
        c, k = config.channels, config.context_channels
        self.encode = nn.Sequential(
            nn.Conv2d(2, c, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.1),
        )
        self.down = nn.Sequential(
            nn.Conv2d(c, k, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(k, k, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
        )
        self.text_proj = nn.Linear(config.text_dim, k)
        self.norm = nn.LayerNorm(k)
        self.attention = nn.MultiheadAttention(k, config.heads, batch_first=True)
        self.context = nn.Sequential(nn.Conv2d(k, k, 3, padding=1), nn.LeakyReLU(0.1))
        self.decode = nn.Sequential(
            nn.Conv2d(c + k, c, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(c, 2, 3, padding=1),
        )
        nn.init.zeros_(self.decode[-1].weight)
        nn.init.zeros_(self.decode[-1].bias)

    def forward(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        height, width = a.shape[-2:]
        features = self.encode(torch.cat([a, b], dim=1))
        low = self.down(features)  # 1/4
        low = F.avg_pool2d(low, self.config.downsample // 4, ceil_mode=True) if self.config.downsample > 4 else low
        batch, channels, h, w = low.shape
        queries = low.flatten(2).transpose(1, 2)  # [B, h*w, k]
        tokens = self.text_proj(text.to(queries.dtype))
        attended, _ = self.attention(self.norm(queries), tokens, tokens, need_weights=False)
        low = (queries + attended).transpose(1, 2).reshape(batch, channels, h, w)
        context = F.interpolate(self.context(low), size=(height, width), mode="bilinear", align_corners=False)
        out = self.decode(torch.cat([features, context], dim=1))
        weight = torch.sigmoid(out[:, :1])
        return (weight * a + (1 - weight) * b + out[:, 1:]).clamp(0.0, 1.0)


def _build(config: CompactConfig) -> CompactFusion:
    return CompactFusion(config)


SPEC = register(FusionModelSpec(
    name="compact",
    summary="fusekit's compact text-guided network: cross-attention between text and a 1/8-resolution feature "
            "map, light full-resolution conv encoder/decoder; fast on CPU, bundled weights for every task",
    kind="learned",
    tasks=TASKS,
    paper="fusekit (docs/MODELS.md)",
    build=_build,
    config=CompactConfig,
    guidance=("text",),
    text_encoder="offline",
    text_dim=768,
    default_loss="film",
    bundled={task: f"compact_{task}.safetensors" for task in TASKS},
))
