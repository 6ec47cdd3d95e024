"""TGIF, Text-Guided Image Fusion (Huang et al., papers/001): Restormer encoders guided by text cross-attention.

The paper has no public code; this module builds the network from its §"Text-Guided Image Fusion" and
§"Experiment" (Training Details). Choices the text leaves open are fields of `TGIFConfig`, documented there and in
docs/models/TGIF.md.

Data flow (A, B grey [B, 1, H, W] in [0, 1]; ``text`` [B, L, D] the pair's encoder tokens, A's then B's — the
"spliced" text features of the paper, written by ``fusekit encode-text``):

    t = Adapter(text)                                       text aligned to the image feature space
    for each source X in (A, B):                            the "language-guided vision encoder" V(·)
        f = Conv3x3(X)
        repeat M times:  f = TB(f);  f = TextGuidedModulation(f, t)   (text = queries, image = keys/values)
    x = Conv1x1(concat(f_A, f_B))                           fusion of the two guided feature sets
    F = sigmoid(Conv3x3(TB^N(x)))                           the decoder D(·)

Paper defaults: Restormer blocks with 8 heads and width 64, M = 2, N = 3. Loss: FILM's per task (``film`` in
`LOSSES`; the paper's Eq. 1 with FILM's weights). Training: Adam, lr 1e-4 halved every 50 epochs, 300 epochs,
batch 2 (FILM's schedule, preset ``film``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .film import TransformerBlock, channels_last_blocks, concat_channels, conv3x3
from .text_guidance import TextAdapter, TextGuidedModulation


@dataclass
class TGIFConfig:
    """TGIF's architecture. Paper values: `dim`, `heads`, `encoder_blocks`, `decoder_blocks`; the rest is fusekit's
    reading of what the paper leaves open.

    dim: width of every Restormer block ("dimensionality of 64"). Must be a multiple of `heads`.
    heads: attention heads of the Restormer blocks and of the text cross-attention (8).
    ffn_expansion: hidden-width factor of the Restormer feed-forward (not stated; 4, as in FILM's blocks, which
        TGIF's losses and text pipeline follow).
    encoder_blocks: M, Restormer blocks of the vision encoder V(·) (2). The paper calls V(·) the
        "language-guided vision encoder" and repeats the text cross-attention "multiple times", so fusekit puts
        one text cross-attention after each encoder block: the guidance is repeated M times.
    decoder_blocks: N, Restormer blocks of the decoder D(·) (3).
    text_dim: width of the text features (768 for BLIP-2 Q-Former, the paper's encoder, and fusekit's offline
        encoder). Any encoder works: the adapter's first layer projects it.
    adapter_hidden: hidden width of the two-layer text adapter (not stated; 256, the text width FILM projects
        BLIP-2's 768-d features to).
    kv_stride: the image features are average-pooled by this factor before serving as keys/values of the text
        cross-attention (not stated; 4 keeps a 640 × 480 pair within a few hundred MB). 1 attends every pixel.
    modulation: how the cross-attention's result updates the image features (the paper does not say):
        "map+gate", "map" or "gate", as `fusekit.models.text_guidance` describes for both TGIF and MTIF.
    shared_encoder: the paper feeds "paired source images into the encoder" (one V(·)), so by default both
        sources share the encoder's weights; False gives each source its own encoder.
    use_text: False is the ablation "w/o text" (Table 5, Exp. I): no adapter and no cross-attention, the
        encoder is plain Restormer blocks and `text` is ignored.
    """

    dim: int = 64
    heads: int = 8
    ffn_expansion: int = 4
    encoder_blocks: int = 2
    decoder_blocks: int = 3
    text_dim: int = 768
    adapter_hidden: int = 256
    kv_stride: int = 4
    modulation: str = "map+gate"
    shared_encoder: bool = True
    use_text: bool = True


class GuidedEncoder(nn.Module):
    """V(·) for one source: 3×3 embedding, then M × (Restormer block, text cross-attention)."""

    def __init__(self, config: TGIFConfig):
        super().__init__()
        self.embed = nn.Conv2d(1, config.dim, kernel_size=3, padding=1)
        self.blocks = nn.ModuleList(TransformerBlock(config.dim, config.heads, config.ffn_expansion)
                                    for _ in range(config.encoder_blocks))
        self.guides = nn.ModuleList(
            TextGuidedModulation(config.dim, config.heads, config.kv_stride, config.modulation)
            for _ in range(config.encoder_blocks)
        ) if config.use_text else None

    def forward(self, image: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        features = conv3x3(image, self.embed)
        for index, block in enumerate(self.blocks):
            features = block(features)
            if self.guides is not None:
                features = self.guides[index](features, text)
        return features


class TGIF(nn.Module):
    """The TGIF network; ``forward(a, b, text=...)`` returns the fused image [B, 1, H, W] in [0, 1]."""

    def __init__(self, config: TGIFConfig):
        super().__init__()
        if config.dim % config.heads:
            raise ValueError(f"dim ({config.dim}) must be a multiple of heads ({config.heads})")
        self.config = config
        self.adapter = TextAdapter(config.text_dim, config.dim, config.adapter_hidden) if config.use_text else None
        self.encoders = nn.ModuleList(GuidedEncoder(config) for _ in range(1 if config.shared_encoder else 2))
        self.fuse = nn.Conv2d(2 * config.dim, config.dim, kernel_size=1)
        self.decoder = nn.Sequential(*(TransformerBlock(config.dim, config.heads, config.ffn_expansion)
                                       for _ in range(config.decoder_blocks)))
        self.head = nn.Conv2d(config.dim, 1, kernel_size=3, padding=1)
        channels_last_blocks(self)

    def forward(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        aligned = None
        if self.adapter is not None:
            if text is None:
                raise ValueError("TGIF needs the pair's text features (`text`, from fusekit encode-text)")
            aligned = self.adapter(text)
        # Channels-last at full resolution: oneDNN's fast convolutions and no layout copies between layers.
        a, b = (x.contiguous(memory_format=torch.channels_last) for x in (a, b))
        # With a shared encoder both sources use encoders[0]; otherwise B has its own, encoders[1].
        features = concat_channels(self.encoders[0](a, aligned), self.encoders[-1](b, aligned))
        return torch.sigmoid(self.head(self.decoder(self.fuse(features))))
