"""MTIF, Multi-grained Text-guided Image Fusion (Tang et al., papers/004): three text levels guide three stages.

The paper has no public code; this module builds the network from its §4 and Figure 3. Choices the text leaves
open are fields of `MTIFConfig`, documented there and in docs/models/MTIF.md.

Data flow (A, B grey [B, 1, H, W] in [0, 1]; ``text_detail``, ``text_structure``, ``text_semantic`` [B, L, D] the
pair's encoder tokens per level, A's then B's, written by ``fusekit encode-text`` from MTIF's three-level
descriptions):

    for level l = 1, 2, 3 and each source X (the output of level l−1 for l > 1):
        F_v^l  = CNNBlock(TB(PReLU(Conv3x3(X))))                  Eq. 3: Restormer + CNN stage of E_v
        F_tv^l = TGVM(F_v^l, Adapter_l(text_l))                   Eq. 4: text = queries, image = keys/values
    I_out = D(concat(F_tv1^3, F_tv2^3))                           Eq. 5: M(·) is channel concatenation

For training, `training_outputs` also decodes the level-1 and level-2 guided features into images (``level1``,
``level2``), which MTIF's multi-grained loss (`fusekit.models.mtif_loss`, ``mtif`` in `LOSSES`) supervises with a
gradient loss and an SSIM loss. The semantic-driven visual enrichment (`fusekit.models.enrichment`,
``mtif-enrichment``) is the paper's training augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .film import TransformerBlock, channels_last_blocks, concat_channels, conv3x3, prelu
from .text_guidance import TextAdapter, TextGuidedModulation

LEVELS = ("text_detail", "text_structure", "text_semantic")


@dataclass
class MTIFConfig:
    """MTIF's architecture. The paper fixes L = 3 levels (detail, structure, semantic); everything else here is
    fusekit's reading of what it leaves open.

    channels: feature width of the three encoder stages. The paper builds E_v from Restormer and CNN blocks
        "as in FILM" [80]; FILM's three cross-attention stages are 32 wide, so 32 each.
    strides: spatial stride of each stage's embedding convolution. Figure 3 speaks of "multi-scale" features,
        but Eq. 5 decodes the fused image from the last level alone, without skip connections; FILM's stages
        (which MTIF cites for the encoder) keep full resolution, so (1, 1, 1). Strides > 1 are supported: the
        decoders upsample their output to the input size.
    heads: attention heads of the Restormer blocks and of the TGVM cross-attention (FILM's 8).
    ffn_expansion: hidden-width factor of the Restormer feed-forward (FILM's 4).
    decoder_blocks: Restormer blocks of the decoder D(·): FILM's decoder layout, the first on the concatenated
        features (2 × channels[-1]), a 1×1 convolution to channels[-1], the rest at that width (3 as FILM).
    text_dim: width of the text features (768: BLIP-2, the paper's encoder, and fusekit's offline encoder).
    adapter_hidden: hidden width of each level's text adapter (FILM projects BLIP-2 text to 256).
    kv_stride: average-pooling factor of the image features used as TGVM keys/values (see
        `fusekit.models.text_guidance`); 1 attends every pixel.
    modulation: how the cross-attention's result updates the image features (the paper does not say):
        "map+gate", "map" or "gate", as `fusekit.models.text_guidance` describes for both TGIF and MTIF.
    shared_encoder: Eqs. 3–4 apply one E_v and one TV(·) to both sources, so the two sources share weights by
        default; False gives each its own stages (FILM's two-branch layout).
    use_text: False is the ablation "w/o TG" (Table 5, Exp. I): no adapters and no TGVM; text is ignored.
    multi_grained_loss: False is the ablation "w/o ML" (Table 5, Exp. II): no level-1/level-2 decoders, so
        `training_outputs` returns only ``fused`` and the ``mtif`` loss reduces to the base loss.
    """

    channels: tuple[int, int, int] = (32, 32, 32)
    strides: tuple[int, int, int] = (1, 1, 1)
    heads: int = 8
    ffn_expansion: int = 4
    decoder_blocks: int = 3
    text_dim: int = 768
    adapter_hidden: int = 256
    kv_stride: int = 4
    modulation: str = "map+gate"
    shared_encoder: bool = True
    use_text: bool = True
    multi_grained_loss: bool = True


class CNNBlock(nn.Module):
    """Residual 3×3 conv → PReLU → 3×3 conv: the local-detail half of a stage."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.PReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, act, second = self.body
        return second(prelu(first(x), act)).add_(x)


class Stage(nn.Module):
    """One level of E_v (embedding, Restormer block, CNN block), then that level's TGVM."""

    def __init__(self, in_channels: int, channels: int, stride: int, config: MTIFConfig):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1),
                                   nn.PReLU())
        self.transformer = TransformerBlock(channels, config.heads, config.ffn_expansion)
        self.cnn = CNNBlock(channels)
        self.guide = (TextGuidedModulation(channels, config.heads, config.kv_stride, config.modulation)
                      if config.use_text else None)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        conv, act = self.embed
        features = self.cnn(self.transformer(prelu(conv3x3(x, conv) if conv.stride == (1, 1) else conv(x), act)))
        return features if self.guide is None else self.guide(features, text)


class LevelDecoder(nn.Module):
    """Decodes a level's guided pair features to an image (the multi-grained loss's Î_f1, Î_f2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2 * channels, channels, kernel_size=3, padding=1), nn.PReLU(),
                                  nn.Conv2d(channels, 1, kernel_size=3, padding=1))

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return torch.sigmoid(resize_to(self.body(features), size))


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling back to the input size (a no-op at stride 1)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MTIF(nn.Module):
    """The MTIF network; ``forward(a, b, text_detail=..., text_structure=..., text_semantic=...)`` → fused."""

    def __init__(self, config: MTIFConfig):
        super().__init__()
        if len(config.channels) != len(LEVELS) or len(config.strides) != len(LEVELS):
            raise ValueError(f"MTIF has {len(LEVELS)} levels: give {len(LEVELS)} channels and strides")
        if any(c % config.heads for c in config.channels):
            raise ValueError(f"every channel count {config.channels} must be a multiple of heads ({config.heads})")
        if config.decoder_blocks < 1:
            raise ValueError("MTIF's decoder needs at least one block")
        self.config = config
        self.adapters = nn.ModuleList(
            TextAdapter(config.text_dim, c, config.adapter_hidden) for c in config.channels
        ) if config.use_text else None
        self.branches = nn.ModuleList(self._stages(config) for _ in range(1 if config.shared_encoder else 2))
        self.level_decoders = nn.ModuleList(
            LevelDecoder(c) for c in config.channels[:2]
        ) if config.multi_grained_loss else None
        last = config.channels[-1]
        expansion = config.ffn_expansion
        self.decoder = nn.Sequential(
            TransformerBlock(2 * last, config.heads, expansion), nn.Conv2d(2 * last, last, kernel_size=1),
            *(TransformerBlock(last, config.heads, expansion) for _ in range(config.decoder_blocks - 1)),
            nn.Conv2d(last, 1, kernel_size=1),
        )
        channels_last_blocks(self)

    @staticmethod
    def _stages(config: MTIFConfig) -> nn.ModuleList:
        inputs = (1, *config.channels[:-1])
        return nn.ModuleList(Stage(i, c, s, config) for i, c, s in zip(inputs, config.channels, config.strides))

    def _levels(self, a: torch.Tensor, b: torch.Tensor, guidance: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The guided features (F_tv1^l, F_tv2^l) of every level."""
        texts: list[torch.Tensor | None] = [None] * len(LEVELS)
        if self.adapters is not None:
            missing = [name for name in LEVELS if guidance.get(name) is None]
            if missing:
                raise ValueError(f"MTIF needs the per-level text features {', '.join(missing)} "
                                 "(from fusekit encode-text on MTIF's three-level descriptions)")
            texts = [adapter(guidance[name]) for adapter, name in zip(self.adapters, LEVELS)]
        # Channels-last at full resolution: oneDNN's fast convolutions and no layout copies between layers.
        a, b = (x.contiguous(memory_format=torch.channels_last) for x in (a, b))
        stages_a, stages_b = self.branches[0], self.branches[-1]
        levels = []
        for stage_a, stage_b, text in zip(stages_a, stages_b, texts):
            a, b = stage_a(a, text), stage_b(b, text)
            levels.append((a, b))
        return levels

    def _decode(self, last: tuple[torch.Tensor, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """I_out = D(M(F_tv1^L, F_tv2^L)), M = channel concatenation."""
        return torch.sigmoid(resize_to(self.decoder(concat_channels(*last)), size))

    def training_outputs(self, a: torch.Tensor, b: torch.Tensor, **guidance) -> dict[str, torch.Tensor]:
        """``fused`` plus, with the multi-grained loss, the level-1 and level-2 decoded images."""
        size = tuple(a.shape[-2:])
        levels = self._levels(a, b, guidance)
        outputs = {"fused": self._decode(levels[-1], size)}
        if self.level_decoders is not None:
            for index, decoder in enumerate(self.level_decoders):
                outputs[f"level{index + 1}"] = decoder(torch.cat(levels[index], dim=1), size)
        return outputs

    def forward(self, a: torch.Tensor, b: torch.Tensor, **guidance) -> torch.Tensor:
        return self._decode(self._levels(a, b, guidance)[-1], tuple(a.shape[-2:]))
