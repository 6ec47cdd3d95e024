"""fusekit's own compact text-guided fusion network: a few hundred kB, fast on a laptop CPU, any input size.

Why this shape: the expensive part of text-guided fusion networks such as FILM is attention and transformer blocks
at full resolution. Here the text steers two cheap things: how to correct each source before fusing it (what
Text-IF, CVPR 2024, calls degradation-aware fusion: the text says "the visible image is dark and noisy"), and
*where* to take what from, a low-frequency decision made on a feature map 8x smaller than the input (the bundled
weights use only the first, `fusion_reads_text` false). The full-resolution path is a handful of narrow
convolutions:

0. Text (`TextSummary`): the tokens [B, L, text_dim] are projected to `context_channels`, mixed along the sequence
   by three dilated 1-D convolutions (15 tokens of context, so "the visible image is ... noisy" reads as one
   phrase) and pooled by maximum and mean over the tokens into one `text_hidden` vector per pair.
1. Restoration (per source, identity at initialisation, `SourceRestorer`): a keyword-spotting reader
   (`FindingsReader`) finds in the tokens which degradations the text names for which source ("the visible
   image is dark and noisy"); each named kind switches on an expert that corrects the source with a local linear
   model whose coefficient maps a small network predicts from the pixels (FiLM-modulated by the text vector). The
   words say what to correct, the pixels how much; trained against the clean source when the text names a
   degradation and against the input when it does not, so the text is what switches a correction on. With
   `global_level` (the bundled weights) a restorer also sees its source's whole-image mean level, the centre a
   low-contrast image was squeezed around, which no local window can find (computed from the input, or handed to
   every tile of a large image by `whole_image_inputs`). With `restorers_taught_by_fusion` false (the bundled
   weights) the fusion loss stops at the restored sources: the restorers learn to restore, not to help the core.
2. Split: each corrected source is a base (Gaussian blur, σ = `detail_sigma`) plus a detail layer (the rest), the
   classic two-scale decomposition of multi-scale fusion; the network decides how to combine the layers.
3. Encoder (full resolution): two 3x3 convolutions over [A, B, detail A, detail B] → `channels` features,
   FiLM-modulated by the text vector (a scale and shift per channel).
4. Context (1/8 resolution): two strided convolutions and a pooling step give a low-resolution map; each of its
   pixels is a query of a multi-head cross-attention over the text tokens, whose output is added to it
   (residual), followed by a 3x3 convolution and a second FiLM modulation by the text vector.
   With `fusion_reads_text` false (the bundled weights) steps 3 and 4 have neither FiLM nor attention: the text
   acts through the restorers alone, and a text that names nothing leaves the sources and so the fusion as they
   are. A core that read the text learnt to react to the findings themselves, in ways that did not carry over to
   unseen pairs.
5. Decoder (full resolution): the context is upsampled (bilinear) and concatenated with the encoder features; two
   3x3 convolutions predict three maps: a base weight w_b, a detail weight w_d (both through a sigmoid, each logit
   plus a learned scalar times the sources' difference in brightness resp. local detail activity) and a detail
   gain g (softplus, 1 at initialisation). The fused image is
   ``clip(w_b·base_A + (1 − w_b)·base_B + g·(w_d·detail_A + (1 − w_d)·detail_B), 0, 1)``. The last convolutions
   (decoder, restoration and FiLM heads) start at zero, so an untrained model outputs the mean of A and B and
   training only learns the departures. With `pyramid_blend` (MEF's bundled weights) the bases are blended band by
   band instead, w_b smoothed to each band's scale (a Laplacian pyramid of the whole image, as Mertens's exposure
   fusion blends; `fusekit.models.pyramid_blend`): pixel by pixel, a blown-out frame beside a black one left a
   dark ring around a lamp, and a smooth w_b a hazy image. That one step reads the whole image, so a large image
   is fused as `local_layers` tile by tile and one `blend_layers`.

Guidance: ``text`` [B, L, text_dim], pair tokens as `fusekit encode-text` writes them (any L; zero rows, the
padding of a batch, are ignored by the pooling). Bundled weights (one file per task in fusekit/weights/, trained
on synthetic degradations of shared/train pairs described by the offline `stats` describer, `offline` encoder,
see docs/MODELS.md and `make weights`) expect 768-d `offline` features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .baselines.pyramid import blend as array_blend
from .degrade import CORRECTED_KINDS
from .pyramid_blend import pyramid_blend


TASKS = ("ivf", "mif", "mef", "mff")
_SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(x + this) is 1 at x = 0
_BASE_GATE_SCALE = 100.0  # a gate of 0.1 turns a brightness difference of 0.1 into a logit of 1
_DETAIL_GATE_SCALE = 1000.0  # detail activity differences are ~10x smaller
_SPREAD_FLOOR = 1e-5  # added to both whole-image spreads, so a flat image gives a finite ratio (then clamped)
_SPREAD_RATIO_MAX = 32.0  # the ratio of the sources' spreads is kept within [1/32, 32] (the squeezes go to ~1/20)


@dataclass
class CompactConfig:
    text_dim: int = 768  # width of the text features (offline and BLIP-2 encoders: 768)
    channels: int = 16  # full-resolution feature channels
    context_channels: int = 32  # channels of the 1/8-resolution map the text attends with
    heads: int = 4  # cross-attention heads (must divide context_channels)
    downsample: int = 8  # input size / context-map size (a power of two ≥ 4)
    detail_sigma: float = 2.0  # σ of the Gaussian that separates base and detail layers (pixels)
    text_hidden: int = 64  # width of the text vector
    restore_channels: int = 16  # width of each source's text-conditioned restoration network
    reader_taught_by_restoration: bool = False  # training only: let the restoration loss reach the findings reader too
    global_level: bool = False  # restorers also see and stretch around each source's whole-image mean level
    global_spread: bool = False  # with global_level: restorers also see the other source's whole-image contrast against their own
    fusion_reads_text: bool = True  # false: the text acts through the restorers alone (no FiLM, no attention in the core)
    restorers_taught_by_fusion: bool = True  # training only: false, the fusion loss stops at the restored sources
    pyramid_blend: bool = False  # the base layers are blended band by band (Laplacian pyramid), not pixel by pixel


def real_tokens(text: torch.Tensor) -> torch.Tensor:
    """[B, L, D] tokens → [B, 1, L] mask of the real ones (all-zero rows are the padding of a batch)."""
    return (text.abs().sum(dim=-1) > 0).unsqueeze(1)


def token_max(x: torch.Tensor, keep: torch.Tensor, empty: float) -> torch.Tensor:
    """[B, C, L] → [B, C]: the maximum over the tokens that `keep` marks, `empty` where a sequence has none."""
    peak = x.masked_fill(~keep, float("-inf")).amax(dim=2)
    return torch.where(torch.isfinite(peak), peak, torch.full_like(peak, empty))


class TextSummary(nn.Module):
    """[B, L, text_dim] tokens → [B, text_hidden]: projection, dilated 1-D convolutions along the sequence (so a
    word is read with its phrase: "the visible image is ... noisy"), then the maximum and the mean over the tokens.
    The maximum is what lets a short phrase among hundreds of tokens (a degradation finding, a user's prompt) set
    a feature on its own; all-zero (padding) tokens are left out of both."""

    def __init__(self, config: "CompactConfig"):
        super().__init__()
        k = config.context_channels
        self.proj = nn.Linear(config.text_dim, k)
        self.mix = nn.ModuleList(nn.Conv1d(k, k, 3, padding=d, dilation=d) for d in (1, 2, 4))
        self.out = nn.Sequential(nn.Linear(2 * k, config.text_hidden), nn.LeakyReLU(0.1))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        keep = real_tokens(text)
        x = self.proj(text).transpose(1, 2)  # [B, k, L]
        for conv in self.mix:
            x = x + F.leaky_relu(conv(x), 0.1)
        count = keep.sum(dim=2).clamp(min=1)
        peak = token_max(x, keep, empty=0.0)
        mean = (x * keep).sum(dim=2) / count
        return self.out(torch.cat([peak, mean], dim=1))


TOKEN_DROPOUT = 0.3  # the reader's training-time token dropout (FindingsReader)
READER_WORDS = 16  # the reader's narrow per-token projection (FindingsReader)


class FindingsReader(nn.Module):
    """[B, L, text_dim] tokens → [B, 2, len(CORRECTED_KINDS)] logits: does the text say that source A (0) / B (1)
    is dark, noisy, over-exposed or low-contrast? A keyword-spotting 1-D CNN (three convolutions along the tokens,
    dilations 1, 2, 4: a 15-token phrase such as "the visible image is dark (under-exposed) and noisy", then the
    maximum over the tokens, padding left out): a finding is a short phrase among hundreds of tokens, and the
    maximum lets it decide on its own.

    Its label is what the text names (the loss's findings term). Its probabilities switch the restorers' experts,
    and by default the restoration loss does not reach back into it (`CompactFusion._run` detaches them), so it
    learns what the text says, not whatever constant mixture of experts helps the restoration most on average
    (what it had collapsed to for MIF and MEF when both losses trained it).
    `CompactConfig.reader_taught_by_restoration` lets the restoration loss through (earlier IVF weights used it:
    their co-adapted experts corrected a noisy visible image better than experts switched by a reader taught
    alone, until the restorers were taught by the restoration term alone, `restorers_taught_by_fusion`).

    A description is full of one-off words and numbers ("level 217") from which a few hundred training texts can
    be memorised, so the reader sees each token through a narrow projection (`READER_WORDS` numbers: room for the
    few words that name kinds and sources, not for the rest) and, in training, each token is dropped with
    probability `TOKEN_DROPOUT` (a finding's words come two or three times per text and survive). Without the
    two, a reader trained alone got every finding right in only about two thirds of the texts of held-out
    training pairs."""

    def __init__(self, config: "CompactConfig"):
        super().__init__()
        k = config.context_channels
        self.words = nn.Linear(config.text_dim, READER_WORDS, bias=False)
        self.convs = nn.ModuleList([nn.Conv1d(READER_WORDS, k, 3, padding=1),
                                    nn.Conv1d(k, k, 3, padding=2, dilation=2), nn.Conv1d(k, k, 3, padding=4, dilation=4)])
        self.out = nn.Conv1d(k, 2 * len(CORRECTED_KINDS), 1)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        keep = real_tokens(text)
        if self.training:
            text = text * (torch.rand(text.shape[:2], device=text.device) >= TOKEN_DROPOUT)[..., None].to(text.dtype)
        x = self.words(text).transpose(1, 2)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
        scores = token_max(self.out(x), keep, empty=-10.0)  # no tokens: nothing named
        return scores.view(-1, 2, len(CORRECTED_KINDS))


def upsample(x: torch.Tensor, factor: int, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling by exactly `factor`, cropped to `size`: a coarse cell always spans `factor` pixels (not
    size/cells, which drifts when a side is not a multiple of the factor), so a tile on the grid sees what the
    whole image does."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)[..., : size[0], : size[1]]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x` [B, C, H, W] stored pixel by pixel: PyTorch's CPU convolutions over a few channels run 1.5–3x faster on
    this layout (benchmarks/compact_speed.py), and the convolutions after keep it."""
    return x.contiguous(memory_format=torch.channels_last)


def _gaussian_taps(sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    taps = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * sigma**2))
    return taps / taps.sum()


def _zero_linear(width_in: int, width_out: int) -> nn.Linear:
    layer = nn.Linear(width_in, width_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class SourceRestorer(nn.Module):
    """One source's text-conditioned restoration: per degradation kind an expert, a local linear model whose
    coefficients a small network predicts, switched on by what the text says about this source:

        x' = clip(x + Σ_k p_k(t) · (c₁ᵏ·(x − m) + c₂ᵏ·d₁ + c₃ᵏ·d₂ + c₄ᵏ·x + c₅ᵏ [+ c₆ᵏ·(x − μ)] [+ c₇ᵏ·(r − 1)·(x − μ)]), 0, 1)

    with m the local mean, μ the whole image's mean level (only with `CompactConfig.global_level`: low contrast is
    a squeeze of the levels around it, x_low = μ + s·(x − μ), which a stretch c₁ around m cannot undo, since m
    itself was moved towards μ), r the other source's whole-image spread (standard deviation) over this one's (only
    with `CompactConfig.global_spread`: how far a squeeze went is not in the squeezed image, but where both sources
    show one scene, as MFF's two focus settings do, the other keeps the contrast, and c₇ = 1 undoes the squeeze
    exactly), d₁ and d₂ the detail finer than σ = 1 and σ = 2 pixels and c₁ᵏ…c₅ᵏ per-pixel maps. Each
    degradation is undone by a few smooth maps rather than a pixel-accurate residual: contrast is stretched by c₁,
    noise removed by c₂, c₃ < 0 (moving towards the smoothed image), exposure corrected by c₄ and c₅. What to
    correct comes from the words: p_k is the probability that the text names kind k
    (`fusekit.models.degrade.CORRECTED_KINDS`) for this source, read by `FindingsReader`. How much comes from the
    pixels: the maps are read from [x, m, local spread, d₁, d₂] by four 3x3 convolutions (dilations 1, 2, 4, 1: a 17-pixel
    footprint; with `global_level` also x − μ, with `global_spread` also log r) whose hidden layers the text FiLM-modulates. The last convolution starts at zero: an
    untrained restorer is the identity."""

    def __init__(self, config: "CompactConfig"):
        super().__init__()
        c = config.restore_channels
        self.global_level = config.global_level
        self.global_spread = config.global_spread
        self.terms = 5 + self.global_level + self.global_spread  # coefficient maps per expert
        inputs = 5 + self.global_level + self.global_spread  # x, m, spread, d₁, d₂ [, x − μ] [, log r]
        self.convs = nn.ModuleList([nn.Conv2d(inputs, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=2, dilation=2),
                                    nn.Conv2d(c, c, 3, padding=4, dilation=4)])
        self.out = nn.Conv2d(c, len(CORRECTED_KINDS) * self.terms, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.film = _zero_linear(config.text_hidden, 2 * c * len(self.convs))

    def forward(self, x: torch.Tensor, mean: torch.Tensor, spread: torch.Tensor, fine: torch.Tensor,
                detail: torch.Tensor, text: torch.Tensor, findings: torch.Tensor, level: torch.Tensor | None = None,
                ratio: torch.Tensor | None = None) -> torch.Tensor:
        """x restored; `text` is this source's text vector, `findings` its finding logits [B, len(CORRECTED_KINDS)],
        `level` its whole-image mean [B, 1, 1, 1] (used with `CompactConfig.global_level`), `ratio` the other
        source's whole-image spread over its own [B, 1, 1, 1] (used with `CompactConfig.global_spread`)."""
        films = self.film(text)[:, :, None, None].chunk(2 * len(self.convs), dim=1)
        inputs = [x, mean, spread, fine, detail] + ([x - level] if self.global_level else [])
        if self.global_spread:
            inputs.append(ratio.log().expand_as(x))
        h = channels_last(torch.cat(inputs, dim=1))
        for index, conv in enumerate(self.convs):
            h = F.leaky_relu(conv(h) * (1 + films[2 * index]) + films[2 * index + 1], 0.1)
        maps = self.expert_maps(h, torch.sigmoid(findings))
        change = maps[:, :1] * (x - mean) + maps[:, 1:2] * fine + maps[:, 2:3] * detail + maps[:, 3:4] * x + maps[:, 4:5]
        if self.global_level:
            change = change + maps[:, 5:6] * (x - level)
        if self.global_spread:
            change = change + maps[:, 6:7] * (ratio - 1) * (x - level)
        return (x + change).clamp(0.0, 1.0)

    def expert_maps(self, h: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Σ_k p_k · out_k(h) [B, terms, H, W], computed as one convolution per sample with the experts' weights
        mixed first (the convolution is linear, so this is the same sum): terms output channels instead of
        len(CORRECTED_KINDS) · terms, a fifth of the restorer's most expensive layer."""
        batch, channels, height, width = h.shape
        weight = self.out.weight.view(len(CORRECTED_KINDS), self.terms, channels, 3, 3)
        mixed = torch.einsum("bk,ktcij->btcij", p, weight).reshape(batch * self.terms, channels, 3, 3)
        bias = (p @ self.out.bias.view(len(CORRECTED_KINDS), self.terms)).reshape(batch * self.terms)
        maps = F.conv2d(h.reshape(1, batch * channels, height, width), mixed, bias, padding=1, groups=batch)
        return maps.view(batch, self.terms, height, width)


class CompactFusion(nn.Module):
    """forward(a, b, text) → fused; a, b: [B, 1, H, W] in [0, 1]; text: [B, L, text_dim]."""

    def __init__(self, config: CompactConfig):
        super().__init__()
        if config.context_channels % config.heads:
            raise ValueError(f"context_channels {config.context_channels} is not a multiple of heads {config.heads}")
        if config.downsample < 4 or config.downsample & (config.downsample - 1):
            raise ValueError(f"downsample must be a power of two ≥ 4, not {config.downsample}")
        if config.global_spread and not config.global_level:
            raise ValueError("global_spread stretches around the whole-image level: it needs global_level")
        self.config = config
        c, k = config.channels, config.context_channels
        self.encode = nn.Sequential(
            nn.Conv2d(4, c, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.1),
        )
        self.down = nn.Sequential(
            nn.Conv2d(c, k, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(k, k, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
        )
        if config.fusion_reads_text:
            self.text_proj = nn.Linear(config.text_dim, k)
            self.norm = nn.LayerNorm(k)
            self.attention = nn.MultiheadAttention(k, config.heads, batch_first=True)
        self.context = nn.Sequential(nn.Conv2d(k, k, 3, padding=1), nn.LeakyReLU(0.1))
        self.decode = nn.Sequential(
            nn.Conv2d(c + k, c, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(c, 3, 3, padding=1),
        )
        nn.init.zeros_(self.decode[-1].weight)
        nn.init.zeros_(self.decode[-1].bias)
        self.text_summary = TextSummary(config)
        self.source_text = nn.Sequential(nn.Linear(config.text_hidden, 2 * config.text_hidden), nn.LeakyReLU(0.1))
        self.restore = nn.ModuleList([SourceRestorer(config), SourceRestorer(config)])  # A, B
        self.findings = FindingsReader(config)
        if config.fusion_reads_text:  # created here, after the rest, so the random initialisation stays as it was
            self.film_features = _zero_linear(config.text_hidden, 2 * c)
            self.film_context = _zero_linear(config.text_hidden, 2 * k)
        # Learned contrast gates, one scalar each, zero at initialisation: they add k·(base_A − base_B) to the base
        # weight's logit and k·(activity_A − activity_B) to the detail weight's, so "take the brighter" or "take the
        # more detailed" source pixel by pixel is one parameter away instead of something the convolutions must
        # discover; the fixed scales make them learnable within a short run.
        self.base_gate = nn.Parameter(torch.zeros(1))
        self.detail_gate = nn.Parameter(torch.zeros(1))
        self.register_buffer("blur_taps", _gaussian_taps(config.detail_sigma), persistent=False)
        self.register_buffer("fine_taps", _gaussian_taps(1.0), persistent=False)

    def split(self, x: torch.Tensor, taps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(base, detail) of [B, 1, H, W]: separable Gaussian blur (`blur_taps`, σ = detail_sigma, unless other
        `taps` are given) with mirrored borders (the kernel shrinks to fit images smaller than it), and the
        remainder."""
        taps = (self.blur_taps if taps is None else taps).to(x.dtype)
        radius = taps.numel() // 2
        pad_w, pad_h = min(radius, x.shape[-1] - 1), min(radius, x.shape[-2] - 1)
        row, column = taps[radius - pad_w: radius + pad_w + 1], taps[radius - pad_h: radius + pad_h + 1]
        base = F.conv2d(F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect"), (row / row.sum()).view(1, 1, 1, -1))
        base = F.conv2d(F.pad(base, (0, 0, pad_h, pad_h), mode="reflect"), (column / column.sum()).view(1, 1, -1, 1))
        return base, x - base

    @staticmethod
    def local_mean(x: torch.Tensor) -> torch.Tensor:
        """The mean level around each pixel (a ~56-pixel window, computed on the 1/8 grid and upsampled): local, not
        global, so a tile of a large image (`fusekit.app.tiling`, tiles on the 8-pixel grid) sees what the whole
        image would."""
        small = F.avg_pool2d(x, 8, ceil_mode=True)
        small = F.avg_pool2d(small, 7, stride=1, padding=3, count_include_pad=False)
        return upsample(small, 8, x.shape[-2:])

    def correct(self, x: torch.Tensor, role: int, text: torch.Tensor, findings: torch.Tensor,
                level: torch.Tensor | None = None, ratio: torch.Tensor | None = None) -> torch.Tensor:
        """Source `role` (0: A, 1: B) [B, 1, H, W] restored as its text vector [B, text_hidden] and its finding
        logits [B, len(CORRECTED_KINDS)] say."""
        mean, mean_square = self.local_mean(torch.cat([x, x * x], dim=1)).chunk(2, dim=1)  # one pooling pass
        spread = ((mean_square - mean * mean).clamp(min=0.0) + 1e-6).sqrt()
        fine, detail = self.split(x, self.fine_taps)[1], self.split(x)[1]
        return self.restore[role](x, mean, spread, fine, detail, text, findings, level, ratio)

    @property
    def whole_image_names(self) -> tuple[str, ...]:
        """The inputs this model reads of the whole image, which a crop (training) or a tile (`fusekit.app.tiling`)
        cannot compute for itself: ``levels``, the sources' mean levels, with `CompactConfig.global_level`, and
        ``spreads``, their standard deviations, with `CompactConfig.global_spread` too."""
        return ("levels",) * self.config.global_level + ("spreads",) * self.config.global_spread

    @property
    def blends_whole_image(self) -> bool:
        """Whether the last step reads the whole image (`CompactConfig.pyramid_blend`): then a large image is fused
        as `local_layers` tile by tile and one `blend_layers`."""
        return self.config.pyramid_blend

    def whole_image_inputs(self, a, b) -> dict:
        """`whole_image_names` of the whole grey [H, W] sources in [0, 1], as `fuse` hands them to every tile."""
        statistics = {"levels": lambda x: x.mean(), "spreads": lambda x: x.std()}
        return {name: torch.tensor([float(statistics[name](a)), float(statistics[name](b))]) for name in self.whole_image_names}

    def training_outputs(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor, levels: torch.Tensor | None = None,
                         spreads: torch.Tensor | None = None) -> dict:
        """The fused image, the two restored sources (the loss compares those with the clean sources) and the
        findings the model read from the text for each (logits per kind of `CORRECTED_KINDS`)."""
        return self._with_fused(self._run(a, b, text, levels, spreads))

    def forward(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor, levels: torch.Tensor | None = None,
                spreads: torch.Tensor | None = None) -> torch.Tensor:
        return self._with_fused(self._run(a, b, text, levels, spreads))["fused"]

    def local_layers(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor, levels: torch.Tensor | None = None,
                     spreads: torch.Tensor | None = None) -> torch.Tensor:
        """With `CompactConfig.pyramid_blend`: everything but the blend, [B, 4, H, W] (base A, base B, A's base
        weight, the weighted detail), all local, so a large image's tiles can compute them (`fusekit.app.tiling`)
        and `blend_layers` joins the whole image's."""
        return self._run(a, b, text, levels, spreads)["layers"]

    @staticmethod
    def blend_layers(layers: torch.Tensor) -> torch.Tensor:
        """`local_layers` → fused [B, 1, H, W]: the bases blended band by band (Laplacian pyramid of the whole
        image, so a weight decided here reaches as far as its band does), the detail added."""
        base_a, base_b, w_base, detail = layers.split(1, dim=1)
        return (pyramid_blend(base_a, base_b, w_base) + detail).clamp(0.0, 1.0)

    @staticmethod
    def blend_layers_array(layers: np.ndarray) -> np.ndarray:
        """`blend_layers` of one large image's stitched layers, a float32 [4, H, W] numpy array → [H, W]: the same
        blend in numpy (`fusekit.models.baselines.pyramid.blend`, equal to the torch one to float rounding), whose
        filters need a fraction of the memory of torch's on a 4000 × 3000 image."""
        base_a, base_b, w_base, detail = layers
        fused = array_blend([base_a, base_b], [w_base, 1 - w_base])
        fused += detail
        return np.clip(fused, 0.0, 1.0, out=fused)

    def _with_fused(self, outputs: dict) -> dict:
        return {**outputs, "fused": self.blend_layers(outputs["layers"])} if "layers" in outputs else outputs

    def attend(self, low: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The 1/8-resolution map [B, k, h, w] with what each of its pixels read from the text tokens added."""
        batch, channels, h, w = low.shape
        queries = low.flatten(2).transpose(1, 2)  # [B, h*w, k]
        tokens = self.text_proj(text.to(queries.dtype))
        attended, _ = self.attention(self.norm(queries), tokens, tokens, need_weights=False)
        return (queries + attended).transpose(1, 2).reshape(batch, channels, h, w)

    def _run(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor, levels: torch.Tensor | None = None,
             spreads: torch.Tensor | None = None) -> dict:
        height, width = a.shape[-2:]
        summary = self.text_summary(text.to(a.dtype))
        text_a, text_b = self.source_text(summary).chunk(2, dim=1)
        findings = self.findings(text.to(a.dtype))
        # the reader learns from the findings term alone (see FindingsReader), unless the config says otherwise
        switches = findings if self.config.reader_taught_by_restoration else findings.detach()
        level_a = level_b = ratio_a = ratio_b = None
        if self.config.global_level:
            if levels is None:  # the whole image is here: its mean levels
                levels = torch.stack([a.mean(dim=(1, 2, 3)), b.mean(dim=(1, 2, 3))], dim=1)
            level_a, level_b = (levels[:, i, None, None, None].to(a.dtype) for i in (0, 1))
        if self.config.global_spread:
            if spreads is None:  # the whole image is here: its standard deviations
                spreads = torch.stack([a.std(dim=(1, 2, 3), correction=0), b.std(dim=(1, 2, 3), correction=0)], dim=1)
            ratio = ((spreads[:, 1] + _SPREAD_FLOOR) / (spreads[:, 0] + _SPREAD_FLOOR)).clamp(1 / _SPREAD_RATIO_MAX, _SPREAD_RATIO_MAX)
            ratio_a = ratio[:, None, None, None].to(a.dtype)  # B's spread over A's; A's over B's is its inverse
            ratio_b = 1 / ratio_a
        a = self.correct(a, 0, text_a, switches[:, 0], level_a, ratio_a)
        b = self.correct(b, 1, text_b, switches[:, 1], level_b, ratio_b)
        restored = {"restored_a": a, "restored_b": b, "findings": findings}
        if not self.config.restorers_taught_by_fusion:  # they learn to restore alone; the core fuses what they give
            a, b = a.detach(), b.detach()
        (base_a, detail_a), (base_b, detail_b) = self.split(a), self.split(b)
        features = self.encode(channels_last(torch.cat([a, b, detail_a, detail_b], dim=1)))
        if self.config.fusion_reads_text:
            scale, shift = self.film_features(summary)[:, :, None, None].chunk(2, dim=1)
            features = features * (1 + scale) + shift
        low = self.down(features)  # 1/4
        low = F.avg_pool2d(low, self.config.downsample // 4, ceil_mode=True) if self.config.downsample > 4 else low
        if self.config.fusion_reads_text:  # the text says where to take what from: attention, then FiLM
            context = self.context(self.attend(low, text))
            scale, shift = self.film_context(summary)[:, :, None, None].chunk(2, dim=1)
            context = context * (1 + scale) + shift
        else:
            context = self.context(low)
        context = upsample(context, self.config.downsample, (height, width))
        maps = self.decode(channels_last(torch.cat([features, context], dim=1)))
        activity_a = F.avg_pool2d(detail_a.abs(), 5, stride=1, padding=2, count_include_pad=False)
        activity_b = F.avg_pool2d(detail_b.abs(), 5, stride=1, padding=2, count_include_pad=False)
        w_base = torch.sigmoid(maps[:, :1] + _BASE_GATE_SCALE * self.base_gate * (base_a - base_b))
        w_detail = torch.sigmoid(maps[:, 1:2] + _DETAIL_GATE_SCALE * self.detail_gate * (activity_a - activity_b))
        gain = F.softplus(maps[:, 2:] + _SOFTPLUS_ONE)
        detail = gain * (w_detail * detail_a + (1 - w_detail) * detail_b)
        if self.config.pyramid_blend:  # the one step that reads the whole image (see blend_layers)
            return {"layers": torch.cat([base_a, base_b, w_base, detail], dim=1), **restored}
        return {"fused": (w_base * base_a + (1 - w_base) * base_b + detail).clamp(0.0, 1.0), **restored}
