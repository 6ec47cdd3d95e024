"""FILM (Zhao et al., ICML 2024): the released image-fusion network, parameter for parameter.

The arithmetic is the released network's (docs/FUSE.md, shared reference FILM.md); the evaluation order is not.
These exact rewrites make its forward pass take 4.6-4.8x less CPU time than the released code's, in about a
quarter of its memory (benchmarks/film_speed.py, 2 threads):

- Transformer blocks run over horizontal bands of rows (`band_rows`, by default about 5,120 pixels per band), so
  the 8x-wide gated-FFN maps and the 3x-wide attention projections never exist for the whole image at once. The
  only spatial operation inside a block is a 3x3 depthwise conv, so each band reads one halo row above and below
  and is exact. Without autograd the FFN's residual add is fused into its last matrix product.
- The channel attention needs sums over every pixel (q·k products and the norms of q and k); they are
  accumulated band by band, and the output projection is folded into the attention matrix, so the attended
  values are one 1x1 conv of v.
- Cross-attention only feeds the mean over text tokens of its output, and that mean is linear in the attention
  weights, so the value projection is applied once to the token-averaged attention instead of to all 13,824
  image tokens.
- 1x1 convs and PReLU act per pixel and nearest resizing only picks pixels, so they commute: the token
  projection, the gate and the half of the merge conv that reads the gate run on the 288 x 384 token grid, not
  at full resolution, and the merge needs no concatenation. Both resizes gather pixel rows (`_nearest_rows`).
- Without autograd each block's attention and feed-forward results overwrite their inputs band by band, the
  FFN's gate and value halves are computed apart (contiguous GELU), single-slope PReLUs are in-place
  `leaky_relu`, and the one-channel stems are a matrix product of shifted pixels (`conv3x3`). Every layer at
  full resolution runs channels-last.

Parameters carry fusekit's names; `from_released_key` maps the released checkpoint layout onto them at load time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import register_released_layout

# Every 3x3 depthwise conv in the network reads one row above and below each output row.
_HALO = 1


@dataclass
class FILMConfig:
    """The released configuration; change a field only to build a variant (released checkpoints won't load)."""

    text_dim: int = 768  # BLIP-2 Q-Former text features
    token_dim: int = 256  # width of the image tokens the text attends to (released `hidden_dim`)
    channels: int = 32  # feature channels of every branch (released `image2text_dim`)
    heads: int = 8  # heads of both the channel attention and the cross-attention
    ffn_expansion: int = 4
    token_grid: tuple[int, int] = (288, 384)  # feature maps are resized to this before being cut into tokens
    # False: the paper's ablation Exp. I (w/o text): no cross-attention; each branch gets a second transformer
    # block instead, as the paper keeps the parameter count close. The text input is then ignored.
    use_text: bool = True


def _band_slices(height: int, rows: int):
    """(start, stop) of consecutive bands of at most `rows` rows covering `height`."""
    rows = max(1, rows)
    for start in range(0, height, rows):
        yield start, min(start + rows, height)


def _weight(conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 conv's weight as the [out, in] matrix of the matrix product it is."""
    return conv.weight.view(conv.weight.shape[0], -1)


def _pointwise(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 conv (no bias) on pixels-major [B, H, W, C] data: one matrix product."""
    return F.linear(x, _weight(conv))


def _band_rows(x: torch.Tensor, start: int, stop: int, above: torch.Tensor | None = None):
    """(rows, pad_top, pad_bottom): the rows of pixels-major x [B, H, W, C] that a 3x3 depthwise conv reads for
    output rows [start, stop), and the zero rows it still needs at the image border. The row above comes from
    `above` when given (x's row start - 1 as it was before the caller overwrote it)."""
    height = x.shape[1]
    high = min(stop + _HALO, height)
    if above is not None:
        return torch.cat([above, x[:, start:high]], dim=1), 0, _HALO - (high - stop)
    low = max(start - _HALO, 0)
    return x[:, low:high], _HALO - (start - low), _HALO - (high - stop)


def _depthwise(u: torch.Tensor, pad_top: int, pad_bottom: int, weight: torch.Tensor) -> torch.Tensor:
    """3x3 depthwise conv of pixels-major rows u [B, rows, W, C] (halo rows included) → [B, rows - 2, W, C]."""
    if pad_top or pad_bottom:
        u = F.pad(u, (0, 0, 0, 0, pad_top, pad_bottom))
    # A channels-last view: oneDNN's depthwise kernel is several times faster on it than on NCHW.
    return F.conv2d(u.permute(0, 3, 1, 2), weight, padding=(0, 1), groups=weight.shape[0]).permute(0, 2, 3, 1)


def prelu(x: torch.Tensor, act: nn.PReLU) -> torch.Tensor:
    """`act(x)`. Without autograd a single-slope PReLU is `leaky_relu` with that slope (the same `x > 0 ? x : w x`),
    applied in place to a fresh `x`: PyTorch's PReLU kernel is several times slower on channels-last data."""
    if torch.is_grad_enabled() or act.weight.numel() != 1:
        return act(x)
    return F.leaky_relu_(x, act.weight.item())


def conv3x3(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(x)` (3x3, padding 1) as a channels-last map. On a one-channel image it is a matrix product of the 9
    shifted copies of each pixel: ~1.5x faster than oneDNN's kernel there, whose output is also NCHW (the next
    block would transpose it)."""
    if conv.in_channels != 1:
        return conv(x)
    batch, _, height, width = x.shape
    columns = F.unfold(x, 3, padding=1).transpose(1, 2)  # [B, H*W, 9]
    weight = conv.weight.view(conv.out_channels, 9).t()
    out = columns @ weight if conv.bias is None else torch.addmm(conv.bias, columns.reshape(-1, 9), weight)
    return out.view(batch, height, width, -1).permute(0, 3, 1, 2)


def concat_channels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.cat([a, b], dim=1) as a channels-last map: concatenated pixels-major, so no layout copy follows
    (torch.cat of two channels-last maps is a contiguous NCHW one, which the next block would transpose)."""
    return torch.cat([a.permute(0, 2, 3, 1), b.permute(0, 2, 3, 1)], dim=-1).permute(0, 3, 1, 2)


def channels_last_blocks(model: nn.Module) -> None:
    """Every `TransformerBlock` of `model` returns channels-last maps: for networks whose full-resolution layers
    all run channels-last (FILM, TGIF, MTIF), so no layout copies between layers."""
    for module in model.modules():
        if isinstance(module, TransformerBlock):
            module.channels_last_output = True


def _nearest_rows(size_in: tuple[int, int], size_out: tuple[int, int], device) -> torch.Tensor:
    """Flat source index of every pixel of a `size_out` nearest resize of a `size_in` grid, in row-major order.

    Taken from `F.interpolate` itself on the row and column numbers, so it picks exactly the pixels it picks;
    gathering rows of a pixels-major [B, H*W, C] tensor with it is that resize without layout copies."""
    def axis(n_in, n_out):
        numbers = torch.arange(n_in, dtype=torch.float32, device=device).view(1, 1, -1)
        return F.interpolate(numbers, size=n_out, mode="nearest").view(-1).long()

    rows, columns = axis(size_in[0], size_out[0]), axis(size_in[1], size_out[1])
    return (rows[:, None] * size_in[1] + columns[None, :]).view(-1)


class ChannelNorm(nn.Module):
    """LayerNorm over channels at every pixel (Restormer's "WithBias" form: biased variance, eps 1e-5)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """On [B, C, H, W]."""
        mean = x.mean(1, keepdim=True)
        var = (x - mean).square().mean(1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * self.weight[:, None, None] + self.bias[:, None, None]

    def pixels_major(self, x: torch.Tensor) -> torch.Tensor:
        """The same on [B, H, W, C]."""
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, 1e-5)


class ChannelAttention(nn.Module):
    """Restormer's MDTA: attention between channels (per head), global over pixels, via 1x1 + depthwise 3x3 qkv."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.qkv_depthwise = nn.Conv2d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=False)
        self.out = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, norm: ChannelNorm, band_rows: int) -> torch.Tensor:
        """`x + out(attend(norm(x)))` for pixels-major x [B, H, W, C], computed band by band."""
        batch, height, width, channels = x.shape
        per_head = channels // self.heads
        gram = x.new_zeros(batch, self.heads, per_head, per_head, dtype=torch.float32)
        q_sq = x.new_zeros(batch, channels, dtype=torch.float32)
        k_sq = torch.zeros_like(q_sq)
        values = torch.empty_like(x)

        for start, stop in _band_slices(height, band_rows):
            rows, pad_top, pad_bottom = _band_rows(x, start, stop)
            qkv = _depthwise(_pointwise(norm.pixels_major(rows), self.qkv), pad_top, pad_bottom, self.qkv_depthwise.weight)
            q, k, v = qkv.split(channels, dim=-1)
            values[:, start:stop] = v
            q = q.reshape(batch, -1, self.heads, per_head).float()  # views of qkv (no copy) in fp32
            k = k.reshape(batch, -1, self.heads, per_head).float()
            for index in range(batch):  # per-head q^T k on strided views: batched matmul without copies
                gram[index] += torch.bmm(q[index].permute(1, 2, 0), k[index].permute(1, 0, 2))
            q_sq += q.square().sum(1).view(batch, channels)
            k_sq += k.square().sum(1).view(batch, channels)
        # F.normalize(q) @ F.normalize(k)^T == (q @ k^T) / (max(|q|, eps) max(|k|, eps)^T), eps 1e-12. Clamped
        # before the square root: sqrt's gradient at 0 is infinite, and an all-zero input (a masked view, a black
        # image) would turn it into NaN gradients.
        q_norm = q_sq.clamp_min(1e-24).sqrt().view(batch, self.heads, per_head)
        k_norm = k_sq.clamp_min(1e-24).sqrt().view(batch, self.heads, per_head)
        attention = (gram / (q_norm[..., :, None] * k_norm[..., None, :]) * self.temperature).softmax(-1)
        # out(attention @ v) == (out ∘ blockdiag(attention)) @ v: one channels x channels 1x1 conv per image.
        weight = self.out.weight.view(channels, self.heads, per_head).float()
        mixing = torch.einsum("ohc,bhcd->bohd", weight, attention).reshape(batch, channels, channels).to(x.dtype)
        if torch.is_grad_enabled():  # x + v @ mixing^T in one pass: the residual add is fused into the product
            return torch.baddbmm(x.view(batch, -1, channels), values.view(batch, -1, channels), mixing.transpose(1, 2)).view_as(x)
        # Without autograd the result overwrites v band by band: one full-resolution map fewer.
        for start, stop in _band_slices(height, band_rows):
            band = values[:, start:stop].reshape(batch, -1, channels)  # a view: whole rows of contiguous values
            torch.add(x[:, start:stop].reshape(batch, -1, channels), band @ mixing.transpose(1, 2), out=band)
        return values


class GatedFeedForward(nn.Module):
    """Restormer's GDFN: 1x1 expand to 2 x 4C, depthwise 3x3, gelu(first half) * second half, 1x1 back."""

    def __init__(self, channels: int, expansion: int):
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Conv2d(channels, 2 * hidden, 1, bias=False)
        self.depthwise = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False)
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)

    def _hidden(self, y: torch.Tensor, norm: ChannelNorm, start: int, stop: int, above=None) -> torch.Tensor:
        """gelu(gate) * value of output rows [start, stop) of pixels-major y (`above`: see `_band_rows`). The gate
        and value halves are computed apart (the same per-channel arithmetic): GELU on a contiguous map is ~2.5x
        faster than on a strided half, and two 4x-wide products than one 8x-wide."""
        rows, pad_top, pad_bottom = _band_rows(y, start, stop, above)
        normed = norm.pixels_major(rows)
        halves = zip(_weight(self.expand).chunk(2), self.depthwise.weight.chunk(2))
        gate, value = (_depthwise(F.linear(normed, expand), pad_top, pad_bottom, depthwise) for expand, depthwise in halves)
        if torch.is_grad_enabled():  # autograd takes no in-place product
            return F.gelu(gate) * value
        return F.gelu(gate).mul_(value)

    def add_band(self, y: torch.Tensor, norm: ChannelNorm, start: int, stop: int, out: torch.Tensor) -> None:
        """out[:, start:stop] = y[:, start:stop] + FFN(y) there, for pixels-major y and out [B, H, W, C]."""
        out[:, start:stop] = y[:, start:stop] + _pointwise(self._hidden(y, norm, start, stop), self.project)

    def add_in_place(self, y: torch.Tensor, norm: ChannelNorm, rows: int) -> None:
        """y += FFN(y) for pixels-major y [B, H, W, C], without autograd, band by band from the top: each band's
        residual add is fused into its last matrix product, which writes over y; the one original row the next
        band's depthwise conv still reads is kept aside first."""
        project, above = _weight(self.project).t(), None
        for start, stop in _band_slices(y.shape[1], rows):
            hidden = self._hidden(y, norm, start, stop, above)
            above = y[:, stop - _HALO:stop].clone()
            for index in range(y.shape[0]):  # one image's rows [start, stop) are contiguous in y
                y[index, start:stop].view(-1, y.shape[-1]).addmm_(hidden[index].reshape(-1, hidden.shape[-1]), project)


class TransformerBlock(nn.Module):
    """Restormer block: `y = x + MDTA(LN(x))`, `out = y + GDFN(LN(y))` (8 heads, expansion 4, no conv bias).

    Takes and returns [B, C, H, W]; internally pixels-major ([B, H, W, C]) so 1x1 convs are plain matrix
    products and LayerNorm runs over contiguous channels.
    """

    # Rows per band; any value gives the same result. None: about `band_pixels` pixels per band, which keeps a
    # band's 8x-wide FFN maps in cache (640 wide: 8 rows, ~18% less CPU and ~25% less memory than 32-row bands
    # at one thread; benchmarks/film_speed.py).
    band_rows: int | None = None
    band_pixels = 5120
    # Return a channels-last tensor (no layout copy) instead of a contiguous NCHW one; FILM sets it, since all
    # its full-resolution layers run channels-last. Callers that `.view` the output keep the default.
    channels_last_output = False

    def __init__(self, channels: int, heads: int, expansion: int):
        super().__init__()
        self.attn_norm = ChannelNorm(channels)
        self.attn = ChannelAttention(channels, heads)
        self.ffn_norm = ChannelNorm(channels)
        self.ffn = GatedFeedForward(channels, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1).contiguous()  # free when x is channels-last already
        rows = self.band_rows or max(1, self.band_pixels // x.shape[2])
        y = self.attn(x, self.attn_norm, rows)
        if torch.is_grad_enabled():  # training: autograd takes no in-place update of y
            out = torch.empty_like(y)
            for start, stop in _band_slices(y.shape[1], rows):
                self.ffn.add_band(y, self.ffn_norm, start, stop, out)
        else:
            self.ffn.add_in_place(y, self.ffn_norm, rows)
            out = y
        out = out.permute(0, 3, 1, 2)
        return out if self.channels_last_output else out.contiguous()


class TextToImageAttention(nn.Module):
    """Multi-head attention with the text tokens as queries and image tokens as keys and values.

    Parameters are laid out as `torch.nn.MultiheadAttention`'s (packed q/k/v input projection). Only the mean
    over the text tokens of the output is ever used, so `mean_output` returns just that, exactly.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def mean_output(self, text: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """mean over text tokens of MHA(query=text [B, L, D], key=value=tokens [B, N, D]) → [B, D]."""
        return mean_attention(text, tokens, self.in_proj_weight, self.in_proj_bias, self.out_proj, self.heads)[0]


def mean_attention(text: torch.Tensor, tokens: torch.Tensor, in_proj_weight: torch.Tensor, in_proj_bias: torch.Tensor,
                   out_proj: nn.Linear, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Of the multi-head attention `nn.MultiheadAttention` computes with these parameters for query=text
    [B, L, D] and key=value=tokens [B, N, D]: (the mean over text tokens of its output [B, D], its attention
    weights averaged over heads and text tokens [B, N]). That mean is linear in the weights, so the value
    projection is applied once to the token-averaged weights instead of to all N tokens."""
    batch, length, dim = text.shape
    per_head = dim // heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = F.linear(text, w_q, b_q).view(batch, length, heads, per_head).transpose(1, 2)
    # Each head's keys made contiguous: the product with a strided [N, per_head] view is several times slower.
    k = F.linear(tokens, w_k, b_k).view(batch, -1, heads, per_head).transpose(1, 2).contiguous()
    weights = ((q * (1.0 / math.sqrt(per_head))) @ k.transpose(-1, -2)).softmax(-1).mean(2)  # [B, heads, N]
    # mean_L(weights @ (tokens W_v^T + b_v)) == (mean_L(weights) @ tokens) W_v^T + b_v (rows sum to one).
    pooled = weights @ tokens  # [B, heads, D]
    attended = torch.einsum("bhd,hcd->bhc", pooled, w_v.view(heads, per_head, dim)).reshape(batch, dim) + b_v
    return out_proj(attended), weights.mean(1)


class GuidedBranch(nn.Module):
    """One image's path through a cross-attention block: features, text-weighted token gating, merge."""

    def __init__(self, in_channels: int, config: FILMConfig):
        super().__init__()
        c = config.channels
        self.token_grid = tuple(config.token_grid)
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        self.stem_act = nn.PReLU()
        self.block = TransformerBlock(c, config.heads, config.ffn_expansion)
        self.use_text = config.use_text
        if not config.use_text:
            self.image_only = TransformerBlock(c, config.heads, config.ffn_expansion)
            self.merge = nn.Conv2d(2 * c, c, 1)
            self.merge_act = nn.PReLU()
            return
        self.to_tokens = nn.Conv2d(c, c, 1)
        self.cross_attention = TextToImageAttention(config.token_dim, config.heads)
        self.gate = nn.Conv2d(c, c, 1)
        self.gate_act = nn.PReLU()
        self.merge = nn.Conv2d(2 * c, c, 1)
        self.merge_act = nn.PReLU()

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Released: merge(cat(f, prelu(gate(resize(g, H x W))) + f)) with g the token-gated resize(to_tokens(f),
        288 x 384). Every 1x1 conv and PReLU works per pixel and nearest resizing only picks pixels, so they
        commute: to_tokens, gate, its PReLU and merge's half that reads the gate (with merge's bias) run on the
        288 x 384 grid, and merge(cat(f, u + f)) = (W_f + W_u) f + (W_u u + b) needs no concatenation. Both
        resizes gather pixel rows of pixels-major data (`_nearest_rows`)."""
        features = self.block(prelu(conv3x3(x, self.stem), self.stem_act))  # channels-last
        if not self.use_text:
            return self.merge_act(self.merge(torch.cat([features, self.image_only(features)], dim=1)))
        batch, channels, height, width = features.shape
        pixels = features.permute(0, 2, 3, 1).reshape(batch, -1, channels)  # a view: features is channels-last
        small = pixels.index_select(1, _nearest_rows((height, width), self.token_grid, x.device))  # [B, N, C]
        # The tokens are runs of 256 values of the [B, C, 288, 384] grid in NCHW memory order (they straddle rows,
        # as released): one matrix product writes to_tokens' output in that order.
        grid = torch.baddbmm(self.to_tokens.bias.view(1, -1, 1), _weight(self.to_tokens).expand(batch, -1, -1),
                             small.transpose(1, 2))
        tokens = grid.view(batch, -1, text.shape[-1])
        weights = self.cross_attention.mean_output(text, tokens)
        weights = weights / weights.abs().sum(-1, keepdim=True).clamp_min(1e-12)
        gated = (tokens * weights[:, None, :]).view_as(grid).transpose(1, 2)  # pixels-major view [B, N, C]
        w_features, w_guided = _weight(self.merge).split(channels, dim=1)
        guided = F.linear(prelu(F.linear(gated, _weight(self.gate), self.gate.bias), self.gate_act), w_guided, self.merge.bias)
        merged = guided.index_select(1, _nearest_rows(self.token_grid, (height, width), x.device))  # [B, H*W, C]
        merged.view(-1, channels).addmm_(pixels.reshape(-1, channels), (w_features + w_guided).t())
        merged = prelu(merged, self.merge_act)
        return merged.view(batch, height, width, channels).permute(0, 3, 1, 2)  # channels-last [B, C, H, W]


class CrossAttentionBlock(nn.Module):
    """Two independent guided branches, one per source image; they meet only in the decoder."""

    def __init__(self, in_channels: int, config: FILMConfig):
        super().__init__()
        self.branch_a = GuidedBranch(in_channels, config)
        self.branch_b = GuidedBranch(in_channels, config)

    def forward(self, a, b, text):
        return self.branch_a(a, text), self.branch_b(b, text)


class FILM(nn.Module):
    """forward(a, b, text): grey a, b [B, 1, H, W] in [0, 1] in the task's input order, text [B, L, 768] →
    fused [B, 1, H, W] (the released network's sigmoid output)."""

    def __init__(self, config: FILMConfig | None = None):
        super().__init__()
        config = config or FILMConfig()
        self.config = config
        c, heads, expansion = config.channels, config.heads, config.ffn_expansion
        self.text_proj = nn.Conv1d(config.text_dim, config.token_dim, 1) if config.use_text else None
        self.encoder = nn.ModuleList([CrossAttentionBlock(1 if i == 0 else c, config) for i in range(3)])
        self.fuse_block = TransformerBlock(2 * c, heads, expansion)
        self.reduce = nn.Conv2d(2 * c, c, 1)
        self.refine = nn.Sequential(TransformerBlock(c, heads, expansion), TransformerBlock(c, heads, expansion))
        self.head = nn.Conv2d(c, 1, 1)
        channels_last_blocks(self)

    def set_band_rows(self, rows: int) -> None:
        """Rows per band of every transformer block: a memory/speed trade-off that leaves the output unchanged."""
        for module in self.modules():
            if isinstance(module, TransformerBlock):
                module.band_rows = rows

    def forward(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if self.text_proj is not None:
            if text.shape[-1] != self.config.text_dim:
                raise ValueError(f"text features are {text.shape[-1]}-d, FILM needs {self.config.text_dim}-d")
            text = self.text_proj(text.transpose(1, 2)).transpose(1, 2)
        # Channels-last at full resolution: oneDNN's fast convolutions and no layout copies between layers.
        a = a.contiguous(memory_format=torch.channels_last)
        b = b.contiguous(memory_format=torch.channels_last)
        for block in self.encoder:
            a, b = block(a, b, text)
        x = concat_channels(a, b)
        del a, b  # not needed any more: the widest block's peak memory holds neither
        x = self.reduce(self.fuse_block(x))
        return torch.sigmoid(self.head(self.refine(x)))


# Released checkpoint names → fusekit names (applied in order to keys without the `module.` prefix).
_RELEASED_NAMES = [
    (r"^text_process\.conv\.", "text_proj."),
    (r"^restormerca([123])\.", lambda m: f"encoder.{int(m.group(1)) - 1}."),
    (r"\.cross_attentionA1\.multihead_attn\.", ".branch_a.cross_attention."),
    (r"\.cross_attentionA2\.multihead_attn\.", ".branch_b.cross_attention."),
    (r"\.imagef2textf([AB])1\.conv\.", lambda m: f".branch_{m.group(1).lower()}.to_tokens."),
    (r"\.restormer([AB])1\.", lambda m: f".branch_{m.group(1).lower()}.block."),
    (r"\.conv([AB])1\.", lambda m: f".branch_{m.group(1).lower()}.stem."),
    (r"\.prelu([AB])1\.", lambda m: f".branch_{m.group(1).lower()}.stem_act."),
    (r"\.conv([AB])2\.", lambda m: f".branch_{m.group(1).lower()}.gate."),
    (r"\.prelu([AB])2\.", lambda m: f".branch_{m.group(1).lower()}.gate_act."),
    (r"\.conv([AB])3\.", lambda m: f".branch_{m.group(1).lower()}.merge."),
    (r"\.prelu([AB])3\.", lambda m: f".branch_{m.group(1).lower()}.merge_act."),
    (r"^restormer1\.", "fuse_block."),
    (r"^restormer([23])\.", lambda m: f"refine.{int(m.group(1)) - 2}."),
    (r"^conv1\.", "reduce."),
    (r"^conv2\.", "head."),
    (r"norm1\.body\.", "attn_norm."),
    (r"norm2\.body\.", "ffn_norm."),
    (r"attn\.qkv_dwconv\.", "attn.qkv_depthwise."),
    (r"attn\.project_out\.", "attn.out."),
    (r"ffn\.project_in\.", "ffn.expand."),
    (r"ffn\.dwconv\.", "ffn.depthwise."),
    (r"ffn\.project_out\.", "ffn.project."),
]
_RELEASED_NAMES = [(re.compile(pattern), replacement) for pattern, replacement in _RELEASED_NAMES]


def from_released_key(key: str) -> str:
    """The fusekit name of a released FILM parameter (`module.` prefix already removed)."""
    for pattern, replacement in _RELEASED_NAMES:
        key = pattern.sub(replacement, key)
    return key


register_released_layout("film", from_released_key)
