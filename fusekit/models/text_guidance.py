"""Text-guided modulation of image features: the cross-attention TGIF and MTIF share.

Both papers (TGIF §"Component III", MTIF §4.3 "TGVM") state the same mechanism: encoder text tokens are mapped into
the image feature space by an adapter, then a cross-attention with **text tokens as queries and image features as
keys and values** lets the text pick out the regions and channels it describes. Neither paper says how the
attention's output (one vector per text token) turns back into an image-shaped update; fusekit reads "the text
features guide the image feature extraction, highlighting relevant regions and features" literally:

- *regions*: the attention weights, averaged over heads and text tokens, form a spatial map (normalised so its
  peak is 1) of where the text looked;
- *features*: the attended values, averaged over text tokens, give a per-channel sigmoid gate (FILM's released
  network also averages its cross-attention output over the text tokens into channel weights);
- the update is residual: ``F + W(F ⊙ gate ⊙ map)`` with a learned 1×1 convolution ``W``.

``modulation`` chooses which of the two readings apply: "map+gate" (default) multiplies the features by the map
and by the gate; "map" or "gate" uses one of the two ("map" alone leaves the attention's value and output
projections unused).

Keys and values come from the feature map average-pooled by ``kv_stride`` (attention over every pixel of a
640 × 480 image would hold L × 307200 weights per head); the spatial map is upsampled back bilinearly.

The update is computed per pixel as ``F + b + map ⊙ ((W diag(gate)) F)`` from the attention's token means alone
(`fusekit.models.film.mean_attention`): the same arithmetic up to rounding, without a full-resolution product
per factor (benchmarks/tgif_mtif_speed.py checks it against the plain formulation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .film import mean_attention


class TextAdapter(nn.Module):
    """Maps encoder tokens [B, L, text_dim] to [B, L, dim]: Linear → GELU → Linear → LayerNorm.

    TGIF's "adapter that aligns the text feature space with the image feature space"; any text encoder's width
    works because the first layer projects it.
    """

    def __init__(self, text_dim: int, dim: int, hidden: int):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.norm(self.project(text))


MODULATIONS = ("map+gate", "map", "gate")


class TextGuidedModulation(nn.Module):
    """``F + W(F ⊙ gate(text) ⊙ map(text, F))`` for F [B, dim, H, W] and aligned text [B, L, dim]."""

    def __init__(self, dim: int, heads: int, kv_stride: int, modulation: str = "map+gate"):
        super().__init__()
        if kv_stride < 1:
            raise ValueError(f"kv_stride must be at least 1, not {kv_stride}")
        if modulation not in MODULATIONS:
            raise ValueError(f"modulation must be one of {', '.join(MODULATIONS)}, not {modulation!r}")
        self.kv_stride = kv_stride
        self.use_map = "map" in modulation
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.gate = nn.Linear(dim, dim) if "gate" in modulation else None
        self.project = nn.Conv2d(dim, dim, kernel_size=1)

    def forward(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        pooled = features
        if self.kv_stride > 1:
            grid = (math.ceil(height / self.kv_stride), math.ceil(width / self.kv_stride))
            pooled = F.adaptive_avg_pool2d(features, grid)
        grid_h, grid_w = pooled.shape[-2:]
        tokens = self.norm(pooled.flatten(2).transpose(1, 2))  # [B, h*w, C]
        # Only the means over text tokens of the attention's output and weights are used: `mean_attention` computes
        # just those from the nn.MultiheadAttention's parameters.
        attention = self.attention
        attended, where = mean_attention(text.to(tokens.dtype), tokens, attention.in_proj_weight, attention.in_proj_bias,
                                         attention.out_proj, attention.num_heads)  # [B, C], [B, h*w]
        # features + project(features ⊙ gate ⊙ map) computed per pixel as features + b + map ⊙ (W diag(gate)) f:
        # the gate folds into the 1x1 conv's weight and the map (one value per pixel) into its output.
        weight = self.project.weight.view(channels, channels).expand(batch, -1, -1)
        if self.gate is not None:
            weight = weight * torch.sigmoid(self.gate(attended))[:, None, :]
        pixels = features.permute(0, 2, 3, 1).reshape(batch, -1, channels)  # a view of a channels-last map
        mixed = pixels @ weight.transpose(1, 2)
        if self.use_map:
            where = where / where.amax(dim=1, keepdim=True).clamp_min(1e-12)
            where = where.view(batch, 1, grid_h, grid_w)
            if (grid_h, grid_w) != (height, width):
                where = F.interpolate(where, size=(height, width), mode="bilinear", align_corners=False)
            out = torch.addcmul(pixels, mixed, where.view(batch, -1, 1))
        else:
            out = mixed.add_(pixels)
        out = out.add_(self.project.bias)
        return out.view(batch, height, width, channels).permute(0, 3, 1, 2)  # channels-last [B, C, H, W]
