"""MGFusion (Yang et al., Front. Neurorobot. 2024): CLIP image features injected into and weighting IR/VI fusion.

The paper (papers/002) has no public code; this module builds the network from its §3 and Figures 1–3. Every
choice the text leaves open is a field of `MGFusionConfig`, documented there and in docs/models/MGFUSION.md.

Data flow (A = infrared, B = visible, both grey [B, 1, H, W] in [0, 1]; ``image_embed_a``/``image_embed_b`` are
the frozen CLIP image embeddings [B, E] of the two source images, from ``fusekit encode-image``):

    F_i = IRE(A), F_v = VIE(B)                      two 3x3 conv+BN+LeakyReLU layers, then N Restormer blocks
    CII:  F~ = F + sigmoid(SEP(F)) ⊙ Adapter(e_i ⊙ W_i + e_v ⊙ (1 − W_i))          (Eqs. 1–2, per modality)
    CFF:  F_f = [IRA(e_i) ⊙ F~_i, VIA(e_v) ⊙ F~_v];  F~_f = F_f + sigmoid(SAWP(|∇F_f|)) ⊙ F_f   (Eqs. 3–5)
    FD:   N Restormer blocks, a conv+BN+LeakyReLU layer, a 3x3 conv + Tanh

Loss (Eqs. 6–8): ``|∇F| vs max(|∇A|, |∇B|)`` L1 + λ·``F vs max(A, B)`` L1 with λ = 0.2, registered as
``mgfusion`` in `LOSSES`. Training preset ``mgfusion``: Adam, batch 16, lr 1e-4 → 1e-3 linearly over 20 epochs,
then back down to 1e-4 at epoch 100 (§4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import FusekitError
from .losses import as_float32, gradient_loss, intensity_loss, sobel_gradient
from .film import TransformerBlock


# Restormer's gated feed-forward expansion (FILM's block; neither paper changes it).
FFN_EXPANSION = 4


@dataclass
class MGFusionConfig:
    """MGFusion's architecture. Defaults follow the paper where it states a value; the rest are fusekit's reading.

    channels: C, the feature width of the encoders (the paper does not state it; 64 is the width of the
        Restormer-based fusion networks MGFusion builds on, e.g. CDDFuse). Must be a multiple of `heads`.
    blocks: N, the Restormer blocks in each encoder and in the decoder (not stated; 4 as in CDDFuse's encoder).
    heads: attention heads of each Restormer block (FILM's block, fixed FFN expansion 4).
    embed_dim: E, the CLIP image-embedding size (512 for CLIP ViT-B/32 and ViT-B/16, 768 for ViT-L/14). Must
        match the features `fusekit encode-image` writes.
    adapter_hidden: width of the hidden layer of every two-layer adapter (CII's Adapter, CFF's IRA/VIA); the paper
        says "two linear mapping layers" only. 0 means `channels`.
    adapter_activation: what sits between the two linear layers of an adapter ("relu", "gelu" or "none"; the
        paper names none, and two linear layers without one would collapse into one, so ReLU by default).
    cff_weight_activation: how IRA/VIA outputs become the channel weights W^f of Eq. 3: "sigmoid" (weights in
        (0, 1), fusekit's reading of "attention weights") or "none" (the raw linear output).
    sawp_single_channel: False → SAWP predicts a weight per channel and pixel (W_g the shape of F_f, as Eq. 5's
        element-wise product reads); True → one spatial weight per pixel broadcast over channels.
    shared_cii: whether the IR and VI branches share one CII block (the paper reuses "the CII block" for both;
        False gives each modality its own W_i, Adapter and SEP, which Figure 1 draws as two blocks).
    leaky_slope: negative slope of the LeakyReLU layers (PyTorch's default 0.01; not stated).
    output: "tanh01" maps the final Tanh to [0, 1] as (tanh + 1) / 2, so the contract's [0, 1] output keeps the
        paper's Tanh layer; "tanh_clamp" clamps tanh to [0, 1] (zero gradient below 0).
    use_cii: ablation "w/o CII" (Table 4): encoder features go straight to CFF.
    use_cff: ablation "w/o CFF" (Table 4): the CII outputs are concatenated along channels and decoded.
    """

    channels: int = 64
    blocks: int = 4
    heads: int = 8
    embed_dim: int = 512
    adapter_hidden: int = 0
    adapter_activation: str = "relu"
    cff_weight_activation: str = "sigmoid"
    sawp_single_channel: bool = False
    shared_cii: bool = False
    leaky_slope: float = 0.01
    output: str = "tanh01"
    use_cii: bool = True
    use_cff: bool = True

    def __post_init__(self):
        if self.channels % self.heads:
            raise ValueError(f"channels ({self.channels}) must be a multiple of heads ({self.heads})")
        for name, value, allowed in (
            ("adapter_activation", self.adapter_activation, ("relu", "gelu", "none")),
            ("cff_weight_activation", self.cff_weight_activation, ("sigmoid", "none")),
            ("output", self.output, ("tanh01", "tanh_clamp")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def conv_bn_lrelu(cin: int, cout: int, slope: float) -> nn.Sequential:
    """The paper's "feature extraction layer": 3x3 conv (stride 1) + BatchNorm + LeakyReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(slope))


def adapter(cin: int, hidden: int, cout: int, activation: str) -> nn.Sequential:
    """Two linear layers (CII's Adapter, CFF's IRA/VIA) with the configured activation between them."""
    middle = {"relu": nn.ReLU(), "gelu": nn.GELU(), "none": nn.Identity()}[activation]
    return nn.Sequential(nn.Linear(cin, hidden), middle, nn.Linear(hidden, cout))


def weight_head(cin: int, cout: int) -> nn.Sequential:
    """SEP / SAWP: two 3x3 convs with one ReLU between; the caller applies the sigmoid."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.ReLU(), nn.Conv2d(cin, cout, 3, padding=1))


class Encoder(nn.Module):
    """IRE / VIE: two feature-extraction layers, then N Restormer blocks."""

    def __init__(self, config: MGFusionConfig):
        super().__init__()
        c = config.channels
        self.stem = nn.Sequential(conv_bn_lrelu(1, c, config.leaky_slope), conv_bn_lrelu(c, c, config.leaky_slope))
        self.blocks = nn.Sequential(*(TransformerBlock(c, config.heads, FFN_EXPANSION) for _ in range(config.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class CII(nn.Module):
    """CLIP-driven Information Injection (Eqs. 1–2): F~ = F + sigmoid(SEP(F)) ⊙ A(e_i ⊙ W_i + e_v ⊙ (1 − W_i))."""

    def __init__(self, config: MGFusionConfig):
        super().__init__()
        c, e = config.channels, config.embed_dim
        # W_i starts at ½: both modalities' CLIP features contribute equally before training.
        self.weight_ir = nn.Parameter(torch.full((e,), 0.5))
        self.adapter = adapter(e, config.adapter_hidden or c, c, config.adapter_activation)
        self.sep = weight_head(c, c)

    def forward(self, features: torch.Tensor, embed_ir: torch.Tensor, embed_vi: torch.Tensor) -> torch.Tensor:
        mixed = embed_ir * self.weight_ir + embed_vi * (1 - self.weight_ir)
        clip = self.adapter(mixed)[:, :, None, None]  # [B, C, 1, 1], broadcast over H, W
        return features + torch.sigmoid(self.sep(features)) * clip


class CFF(nn.Module):
    """CLIP-guided Feature Fusion (Eqs. 3–5): CLIP channel weights, concatenation, gradient-driven re-injection."""

    def __init__(self, config: MGFusionConfig):
        super().__init__()
        c, e = config.channels, config.embed_dim
        hidden = config.adapter_hidden or c
        self.ira = adapter(e, hidden, c, config.adapter_activation)
        self.via = adapter(e, hidden, c, config.adapter_activation)
        self.sawp = weight_head(2 * c, 1 if config.sawp_single_channel else 2 * c)
        self.squash = config.cff_weight_activation == "sigmoid"

    def channel_weights(self, head: nn.Module, embed: torch.Tensor) -> torch.Tensor:
        weights = head(embed)
        return (torch.sigmoid(weights) if self.squash else weights)[:, :, None, None]

    def forward(self, f_ir: torch.Tensor, f_vi: torch.Tensor, embed_ir: torch.Tensor, embed_vi: torch.Tensor):
        fused = torch.cat([self.channel_weights(self.ira, embed_ir) * f_ir,
                           self.channel_weights(self.via, embed_vi) * f_vi], dim=1)
        spatial = torch.sigmoid(self.sawp(sobel_gradient(fused)))
        return fused + spatial * fused


class MGFusion(nn.Module):
    """The whole network; ``forward(a, b, image_embed_a, image_embed_b)`` → fused [B, 1, H, W] in [0, 1]."""

    def __init__(self, config: MGFusionConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.ire = Encoder(config)
        self.vie = Encoder(config)
        if config.use_cii:
            self.cii_ir = CII(config)
            if not config.shared_cii:  # shared: one module under one name, so checkpoints hold no aliased tensors
                self.cii_vi = CII(config)
        if config.use_cff:
            self.cff = CFF(config)
        self.decoder = nn.Sequential(*(TransformerBlock(2 * c, config.heads, FFN_EXPANSION) for _ in range(config.blocks)))
        self.feature = conv_bn_lrelu(2 * c, c, config.leaky_slope)
        self.reconstruct = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor, image_embed_a: torch.Tensor | None = None,
                image_embed_b: torch.Tensor | None = None) -> torch.Tensor:
        needs_embeds = self.config.use_cii or self.config.use_cff
        if needs_embeds and (image_embed_a is None or image_embed_b is None):
            raise ValueError("mgfusion needs image_embed_a and image_embed_b (CLIP image features)")
        if needs_embeds:
            if image_embed_a.shape[-1] != self.config.embed_dim or image_embed_b.shape[-1] != self.config.embed_dim:
                raise FusekitError(
                    f"the image embeddings are {image_embed_a.shape[-1]}-d, this mgfusion model takes {self.config.embed_dim}-d",
                    "re-run fusekit encode-image with the CLIP model the weights were trained with",
                )
            image_embed_a = image_embed_a.to(a.dtype)
            image_embed_b = image_embed_b.to(a.dtype)
        f_ir, f_vi = self.ire(a), self.vie(b)
        if self.config.use_cii:
            f_ir = self.cii_ir(f_ir, image_embed_a, image_embed_b)
            f_vi = (self.cii_ir if self.config.shared_cii else self.cii_vi)(f_vi, image_embed_a, image_embed_b)
        if self.config.use_cff:
            fused = self.cff(f_ir, f_vi, image_embed_a, image_embed_b)
        else:
            fused = torch.cat([f_ir, f_vi], dim=1)
        out = torch.tanh(self.reconstruct(self.feature(self.decoder(fused))))
        if self.config.output == "tanh01":
            return (out + 1) / 2
        return out.clamp(0, 1)


# §3.3 Eq. 6: λ balancing the intensity term against the gradient term; §4.2 sets it to 0.2.
INTENSITY_WEIGHT = 0.2


def mgfusion_loss(outputs: dict, batch: dict, task: str) -> tuple[torch.Tensor, dict[str, float]]:
    """MGFusion's Eqs. 6–8: ‖|∇F| − max(|∇A|, |∇B|)‖₁ + 0.2·‖F − max(A, B)‖₁ (per-pixel means), any task."""
    fused, a, b = as_float32(outputs, batch)
    grad = gradient_loss(fused, a, b)
    intensity = intensity_loss(fused, a, b, "max")
    return grad + INTENSITY_WEIGHT * intensity, {"grad": float(grad.detach()), "int": float(intensity.detach())}
