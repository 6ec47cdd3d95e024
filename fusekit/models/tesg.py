"""TeSG (Zhu et al., 2025): mask-guided cross-attention and text-driven gated fusion for infrared–visible images.

The paper (papers/003) has no public code; this module builds the fusion network of its §3.3–3.4 and Figure 2.
The Semantic Information Generator (§3.2) that makes the guidance is `fusekit.guidance.semantics`. Every choice
the text leaves open is a field of `TeSGConfig`, documented there and in docs/models/TESG.md.

Data flow (A = infrared I_ir, B = visible I_vis, grey [B, 1, H, W] in [0, 1]; guidance ``mask`` M [B, 1, H, W]
binary, ``text_semantics`` F_t [B, L, D] from the diffusion model's text encoder):

    F_i = E_i(I_ir),  F_i^m = E_i(M·I_ir),  F_i^m̄ = E_i((1−M)·I_ir);   the same with E_v for I_vis
    MGCA   F_vi = CA(F_v^m, F_i^m) + CA(F_v^m̄, F_i^m̄);   F_iv = CA(F_i^m, F_v^m) + CA(F_i^m̄, F_v^m̄)   (Eqs. 4–6)
    TIVR   F_r = CA_text(Cat(F_vi, F_iv), F_t)                                                     (Eq. 7)
    GAF    G_v = σ(W_v(F_v + F_vi)),  G_i = σ(W_i(F_i + F_iv)),  α = σ(Φ_SA(F_r))                 (Eqs. 8–9)
           F = α·(1 + G_v)·(F_v + F_vi) + (1 − α)·(1 + G_i)·(F_i + F_iv)                         (Eq. 10)
    decoder: four Restormer blocks and a 3x3 conv to one channel.

Cross-attention between two feature maps is computed across channels (Restormer's transposed attention with the
query from the first map and keys/values from the second): attention over the H·W pixels of a 640 × 480 image
would need a 307,200² matrix, and the channel form keeps any input size linear in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FusekitError
from .losses import as_float32, gradient_loss, intensity_loss, ssim_loss
from .film import ChannelNorm, TransformerBlock


# Restormer's gated feed-forward expansion (FILM's block; neither paper changes it).
FFN_EXPANSION = 4


@dataclass
class TeSGConfig:
    """TeSG's fusion network. The paper states four transformer blocks per encoder and decoder; the rest is fusekit's
    reading of §3.3–3.4.

    channels: C, the feature width (not stated; 48, Restormer's base width). Must be a multiple of `heads`.
    blocks: transformer (Restormer) blocks per encoder and in the decoder (paper: four).
    heads: attention heads of every transformer and cross-attention block.
    text_dim: D of the text semantics (768 for Stable Diffusion 1.x's CLIP ViT-L/14 text encoder).
    shared_encoder_views: True → one encoder per modality encodes the whole image and both masked views (the paper
        names "two encoders"; its global and local features come from the same encoder).
    gate_kernel: kernel size of the convolution W_v / W_i of Eq. 8 (not stated; 3).
    attention_hidden: hidden width of Φ_SA, the two-layer 1x1-conv MLP of Eq. 9 (0 means C).
    output: "sigmoid" (fusekit's choice, the paper names no output activation) or "tanh01" ((tanh + 1) / 2).
    use_mgca: ablation "w/o MGCA" (Table 4a): no mask decomposition; F_vi = CA(F_v, F_i), F_iv = CA(F_i, F_v).
    use_tivr: ablation "w/o TIVR" (Table 4b): no text; F_r = Cat(F_vi, F_iv).
    use_gaf: ablation "w/o GAF" (Table 4c): no gates or α; the decoder gets F_r projected to C channels by a 1x1
        conv ("directly decode the initial fused features").
    """

    channels: int = 48
    blocks: int = 4
    heads: int = 8
    text_dim: int = 768
    shared_encoder_views: bool = True
    gate_kernel: int = 3
    attention_hidden: int = 0
    output: str = "sigmoid"
    use_mgca: bool = True
    use_tivr: bool = True
    use_gaf: bool = True

    def __post_init__(self):
        if self.channels % self.heads:
            raise ValueError(f"channels ({self.channels}) must be a multiple of heads ({self.heads})")
        if self.output not in ("sigmoid", "tanh01"):
            raise ValueError(f"output must be 'sigmoid' or 'tanh01', not {self.output!r}")
        if self.gate_kernel % 2 == 0:
            raise ValueError(f"gate_kernel must be odd, not {self.gate_kernel}")


class CrossAttention(nn.Module):
    """CA(x, y) of Eqs. 4–5: x + project(softmax(q_x k_yᵀ · τ) v_y), attention across channels per head.

    q from x, k and v from y (1x1 conv then 3x3 depthwise conv, as Restormer's MDTA), q and k L2-normalised over
    pixels, a learnt temperature τ per head.
    """

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_q = ChannelNorm(channels)
        self.norm_kv = ChannelNorm(channels)
        self.q = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False),
                               nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False))
        self.kv = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False),
                                nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels, bias=False))
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.project = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.q(self.norm_q(x)).reshape(b, self.heads, c // self.heads, h * w)
        k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in self.kv(self.norm_kv(y)).chunk(2, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return x + self.project((attn @ v).reshape(b, c, h, w))


class TextCrossAttention(nn.Module):
    """CA(X, F_t) of Eq. 7: every pixel of X queries the text tokens; multi-head, residual."""

    def __init__(self, channels: int, text_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(text_dim, 2 * channels)
        self.project = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        pixels = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        q = self.q(self.norm(pixels)).view(b, h * w, self.heads, c // self.heads).transpose(1, 2)
        k, v = (t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)
                for t in self.kv(text.to(x.dtype)).chunk(2, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        return x + self.project(out).transpose(1, 2).reshape(b, c, h, w)


class Encoder(nn.Module):
    """One modality's encoder: a 3x3 conv to C channels, then the transformer blocks."""

    def __init__(self, config: TeSGConfig):
        super().__init__()
        self.embed = nn.Conv2d(1, config.channels, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*(TransformerBlock(config.channels, config.heads, FFN_EXPANSION) for _ in range(config.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.embed(x))


class TeSG(nn.Module):
    """The fusion network; ``forward(a, b, mask, text_semantics)`` → fused [B, 1, H, W] in [0, 1]."""

    def __init__(self, config: TeSGConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.encoder_ir = Encoder(config)
        self.encoder_vi = Encoder(config)
        if not config.shared_encoder_views and config.use_mgca:
            self.encoder_ir_views = Encoder(config)
            self.encoder_vi_views = Encoder(config)
        # Eqs. 4–5 (or the ablation's whole-image form): one CA per direction and region.
        regions = ("fg", "bg") if config.use_mgca else ("all",)
        self.ca_vi = nn.ModuleDict({r: CrossAttention(c, config.heads) for r in regions})
        self.ca_iv = nn.ModuleDict({r: CrossAttention(c, config.heads) for r in regions})
        if config.use_tivr:
            self.tivr = TextCrossAttention(2 * c, config.text_dim, config.heads)
        if config.use_gaf:
            k = config.gate_kernel
            self.gate_vi = nn.Conv2d(c, c, k, padding=k // 2)
            self.gate_ir = nn.Conv2d(c, c, k, padding=k // 2)
            hidden = config.attention_hidden or c
            self.spatial_attention = nn.Sequential(nn.Conv2d(2 * c, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 1, 1))
        else:
            self.project = nn.Conv2d(2 * c, c, 1)
        self.decoder = nn.Sequential(*(TransformerBlock(c, config.heads, FFN_EXPANSION) for _ in range(config.blocks)))
        self.reconstruct = nn.Conv2d(c, 1, 3, padding=1)

    def reconstructed(self, ir: torch.Tensor, vi: torch.Tensor, f_ir: torch.Tensor, f_vi: torch.Tensor,
                      mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(F_vi, F_iv): MGCA's mask-guided cross-modal reconstruction (Eqs. 4–6), or the whole-image ablation."""
        if not self.config.use_mgca:
            return self.ca_vi["all"](f_vi, f_ir), self.ca_iv["all"](f_ir, f_vi)
        views_ir = self.encoder_ir if self.config.shared_encoder_views else self.encoder_ir_views
        views_vi = self.encoder_vi if self.config.shared_encoder_views else self.encoder_vi_views
        fg, bg = mask, 1 - mask
        ir_fg, ir_bg = views_ir(ir * fg), views_ir(ir * bg)
        vi_fg, vi_bg = views_vi(vi * fg), views_vi(vi * bg)
        f_vi_rec = self.ca_vi["fg"](vi_fg, ir_fg) + self.ca_vi["bg"](vi_bg, ir_bg)
        f_iv_rec = self.ca_iv["fg"](ir_fg, vi_fg) + self.ca_iv["bg"](ir_bg, vi_bg)
        return f_vi_rec, f_iv_rec

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
                text_semantics: torch.Tensor | None = None) -> torch.Tensor:
        config = self.config
        if config.use_mgca and mask is None:
            raise ValueError("tesg needs a mask [B, 1, H, W] (from TeSG's semantic information generator)")
        if config.use_tivr and text_semantics is None:
            raise ValueError("tesg needs text_semantics [B, L, D] (from TeSG's semantic information generator)")
        if config.use_tivr and text_semantics.shape[-1] != config.text_dim:
            raise FusekitError(
                f"the text semantics are {text_semantics.shape[-1]}-d, this tesg model takes {config.text_dim}-d",
                "re-run fusekit semantics with the diffusion model the weights were trained with",
            )
        if mask is not None:
            mask = mask.to(a.dtype)
        ir, vi = a, b
        f_ir, f_vi = self.encoder_ir(ir), self.encoder_vi(vi)
        f_vi_rec, f_iv_rec = self.reconstructed(ir, vi, f_ir, f_vi, mask)
        f_r = torch.cat([f_vi_rec, f_iv_rec], dim=1)
        if config.use_tivr:
            f_r = self.tivr(f_r, text_semantics)
        if config.use_gaf:
            vis, inf = f_vi + f_vi_rec, f_ir + f_iv_rec
            g_v, g_i = torch.sigmoid(self.gate_vi(vis)), torch.sigmoid(self.gate_ir(inf))
            alpha = torch.sigmoid(self.spatial_attention(f_r))
            fused = alpha * (1 + g_v) * vis + (1 - alpha) * (1 + g_i) * inf
        else:
            fused = self.project(f_r)
        out = self.reconstruct(self.decoder(fused))
        return torch.sigmoid(out) if config.output == "sigmoid" else (torch.tanh(out) + 1) / 2


@dataclass(frozen=True)
class TeSGLossWeights:
    """Weights of TeSG's loss terms. The paper lists SSIM, gradient, intensity and colour losses and defers their
    formulas to a supplement that is not available; fusekit uses FILM's IVF terms (L1 to the element-wise max,
    Sobel gradient to the max gradient) and its SSIM term 2 − SSIM(A, F) − SSIM(B, F).

    The colour term is not computed: fusekit fuses the luma and re-attaches the visible image's chroma, which makes
    a chroma-consistency loss identically zero.
    """

    intensity: float = 1.0
    gradient: float = 10.0
    ssim: float = 1.0


LOSS_WEIGHTS = TeSGLossWeights()


def tesg_loss(outputs: dict, batch: dict, task: str) -> tuple[torch.Tensor, dict[str, float]]:
    """TeSG's loss: 1·‖F − max(A, B)‖₁ + 10·‖|∇F| − max(|∇A|, |∇B|)‖₁ + 1·(2 − SSIM(A, F) − SSIM(B, F))."""
    fused, a, b = as_float32(outputs, batch)
    parts = {"int": intensity_loss(fused, a, b, "max"), "grad": gradient_loss(fused, a, b), "ssim": ssim_loss(fused, a, b)}
    w = LOSS_WEIGHTS
    total = w.intensity * parts["int"] + w.gradient * parts["grad"] + w.ssim * parts["ssim"]
    return total, {name: float(value.detach()) for name, value in parts.items()}
