"""fusekit's `tgif` and `mtif` against plain transcriptions of their forward passes (same run, same weights).

Neither paper released code or weights, so each model is built at its paper-default configuration with random
weights seeded by `--seed` (speed does not depend on the values) and saved as a fusekit checkpoint; both sides load
those weights. The plain transcriptions below are the networks as docs/models/TGIF.md and MTIF.md state them,
written the way a user would from those pages: FILM's released Restormer block (`film_speed.TransformerBlock`:
channel attention and gated feed-forward over the whole image, NCHW convolutions) and the text-guided
cross-attention written out (text tokens as queries, the `kv_stride`-pooled features as keys and values, the
spatial map and channel gate of `fusekit.models.text_guidance`). For one real 640 x 480 pair (MSRS 00040N, DEV
set), each side in a fresh subprocess as `film_speed.py` does:

- plain: the best wall and CPU time of `--repeats` forward passes of the transcription, and its peak RSS;
- fusekit forward: the same for fusekit's module (forward against forward);
- fusekit process: the best wall time of `--repeats` whole `fusekit fuse --model tgif|mtif` processes, their CPU
  time (from wait4) and peak RSS.

Outputs must agree: the raw forward outputs within 1e-5 (absolute) and the PNG `fusekit fuse --grey` wrote within
one grey level of the plain output clipped and rounded the same way; the script exits with 1 otherwise. The text
features are seeded random tensors of BLIP-2's shape (64 tokens, 768-d; three levels for mtif).

    .venv/bin/python benchmarks/tgif_mtif_speed.py [--models tgif mtif] [--repeats 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from film_speed import PAIR, REPO, TransformerBlock, best_process, child_environment, timing_report  # noqa: E402

sys.path.insert(0, str(REPO))
TOKENS = 64  # 32 Q-Former tokens per image, A's then B's
RAW_TOLERANCE = 1e-5
LEVEL_TOLERANCE = 1
TEXT_NAMES = {"tgif": ("text",), "mtif": ("text_detail", "text_structure", "text_semantic")}


# ------------------------------------------------------------------------------ plain transcriptions


class TextAdapter(nn.Module):
    """Linear → GELU → Linear → LayerNorm."""

    def __init__(self, text_dim, dim, hidden):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, text):
        return self.norm(self.project(text))


class MultiHeadAttention(nn.Module):
    """Text → image multi-head attention, written out; returns the output and the head-averaged weights."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query, key, value):
        batch, length, dim = query.shape
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)

        def heads(x):
            return x.view(batch, -1, self.heads, dim // self.heads).transpose(1, 2)

        q, k, v = heads(F.linear(query, w_q, b_q)), heads(F.linear(key, w_k, b_k)), heads(F.linear(value, w_v, b_v))
        weights = (q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads)).softmax(-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, dim)
        return self.out_proj(out), weights.mean(1)


class TextGuidedModulation(nn.Module):
    """F + Conv1x1(F ⊙ sigmoid(gate(mean_L attended)) ⊙ map), map = the attention weights, peak 1, upsampled."""

    def __init__(self, dim, heads, kv_stride):
        super().__init__()
        self.kv_stride = kv_stride
        self.norm = nn.LayerNorm(dim)
        self.attention = MultiHeadAttention(dim, heads)
        self.gate = nn.Linear(dim, dim)
        self.project = nn.Conv2d(dim, dim, 1)

    def forward(self, f, text):
        b, c, h, w = f.shape
        pooled = F.adaptive_avg_pool2d(f, (math.ceil(h / self.kv_stride), math.ceil(w / self.kv_stride)))
        tokens = self.norm(pooled.flatten(2).transpose(1, 2))
        attended, weights = self.attention(text, tokens, tokens)
        gate = torch.sigmoid(self.gate(attended.mean(1)))[:, :, None, None]
        where = weights.mean(1)
        where = (where / where.amax(1, keepdim=True).clamp_min(1e-12)).view(b, 1, *pooled.shape[-2:])
        where = F.interpolate(where, size=(h, w), mode="bilinear", align_corners=False)
        return f + self.project(f * gate * where)


class PlainTGIF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.adapter = TextAdapter(c.text_dim, c.dim, c.adapter_hidden)
        encoder = nn.Module()
        encoder.embed = nn.Conv2d(1, c.dim, 3, padding=1)
        encoder.blocks = nn.ModuleList(TransformerBlock(c.dim, c.heads, c.ffn_expansion) for _ in range(c.encoder_blocks))
        encoder.guides = nn.ModuleList(TextGuidedModulation(c.dim, c.heads, c.kv_stride) for _ in range(c.encoder_blocks))
        self.encoders = nn.ModuleList([encoder])
        self.fuse = nn.Conv2d(2 * c.dim, c.dim, 1)
        self.decoder = nn.Sequential(*(TransformerBlock(c.dim, c.heads, c.ffn_expansion) for _ in range(c.decoder_blocks)))
        self.head = nn.Conv2d(c.dim, 1, 3, padding=1)

    def encode(self, x, text):
        encoder = self.encoders[0]
        f = encoder.embed(x)
        for block, guide in zip(encoder.blocks, encoder.guides):
            f = guide(block(f), text)
        return f

    def forward(self, a, b, text):
        t = self.adapter(text)
        return torch.sigmoid(self.head(self.decoder(self.fuse(torch.cat([self.encode(a, t), self.encode(b, t)], 1)))))


class PlainMTIF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.adapters = nn.ModuleList(TextAdapter(c.text_dim, width, c.adapter_hidden) for width in c.channels)
        stages = nn.ModuleList()
        for in_channels, width in zip((1, *c.channels[:-1]), c.channels):
            stage = nn.Module()
            stage.embed = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.PReLU())
            stage.transformer = TransformerBlock(width, c.heads, c.ffn_expansion)
            stage.cnn = nn.Module()
            stage.cnn.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.PReLU(), nn.Conv2d(width, width, 3, padding=1))
            stage.guide = TextGuidedModulation(width, c.heads, c.kv_stride)
            stages.append(stage)
        self.branches = nn.ModuleList([stages])
        last = c.channels[-1]
        self.decoder = nn.Sequential(TransformerBlock(2 * last, c.heads, c.ffn_expansion), nn.Conv2d(2 * last, last, 1),
                                     *(TransformerBlock(last, c.heads, c.ffn_expansion) for _ in range(c.decoder_blocks - 1)),
                                     nn.Conv2d(last, 1, 1))

    def forward(self, a, b, text_detail, text_structure, text_semantic):
        for stage, adapter, text in zip(self.branches[0], self.adapters, (text_detail, text_structure, text_semantic)):
            t = adapter(text)
            a, b = (stage.guide(f + stage.cnn.body(f), t) for f in (stage.transformer(stage.embed(x)) for x in (a, b)))
        return torch.sigmoid(self.decoder(torch.cat([a, b], 1)))


# fusekit's Restormer-block parameter names → the released names `film_speed.TransformerBlock` uses.
_BLOCK_NAMES = [(r"attn_norm\.", "norm1.body."), (r"ffn_norm\.", "norm2.body."), (r"attn\.qkv_depthwise\.", "attn.qkv_dwconv."),
                (r"attn\.out\.", "attn.project_out."), (r"ffn\.expand\.", "ffn.project_in."),
                (r"ffn\.depthwise\.", "ffn.dwconv."), (r"ffn\.project\.", "ffn.project_out.")]


def plain_state(state: dict) -> dict:
    """fusekit's state dict in the plain networks' names (the multi-grained loss's level decoders are not used)."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("level_decoders."):
            continue
        for pattern, replacement in _BLOCK_NAMES:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


# ------------------------------------------------------------------------------------------------ measuring


def fusekit_model(name: str):
    from fusekit.models import FUSION_MODELS

    spec = FUSION_MODELS.get(name)
    return spec, spec.config()


def save_inputs(name: str, scratch: Path, seed: int) -> tuple[Path, Path]:
    """The seeded random checkpoint and text features of `name`, written where both sides read them."""
    from fusekit.io.formats import write_safetensors
    from fusekit.models.checkpoints import save_checkpoint

    spec, config = fusekit_model(name)
    torch.manual_seed(seed)
    save_checkpoint(scratch / f"{name}.safetensors", name, spec.build(config), config, "ivf")
    generator = torch.Generator().manual_seed(seed)
    text = {key: torch.randn(TOKENS, 768, generator=generator) for key in TEXT_NAMES[name]}
    write_safetensors(str(scratch / f"{name}_text.safetensors"), "text-features", text, {"encoder": "blip2", "dim": "768"})
    return scratch / f"{name}.safetensors", scratch / f"{name}_text.safetensors"


def build(name: str, which: str, weights: Path):
    from fusekit.models.checkpoints import load_model

    module, _ = load_model(name, weights, "ivf")
    if which == "fusekit":
        return module
    _, config = fusekit_model(name)
    plain = (PlainTGIF if name == "tgif" else PlainMTIF)(config)
    plain.load_state_dict(plain_state(module.state_dict()))
    return plain.eval()


def measure(name: str, which: str, args) -> dict:
    """One implementation in this process: best wall and CPU time of `repeats` forwards, peak RSS, output."""
    from fusekit.io.images import grey_input, read_image
    from fusekit.io.formats import read_safetensors

    weights, text_path = Path(args.scratch) / f"{name}.safetensors", Path(args.scratch) / f"{name}_text.safetensors"
    net = build(name, which, weights)
    a, b = (torch.from_numpy(grey_input(read_image(path)))[None, None] for path in PAIR)
    text = {key: value[None] for key, value in read_safetensors(str(text_path), "text-features")[0].items()}
    times, cpu_times = [], []
    with torch.inference_mode():
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            out = net(a, b, **text)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": min(times), "cpu_seconds": min(cpu_times), "peak_mib": peak, "out": out}


def run_child(name: str, which: str, args) -> dict:
    out_path = Path(args.scratch) / f"{name}_{which}.pt"
    command = [sys.executable, __file__, "--child", name, which, "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--scratch", args.scratch]
    subprocess.run(command, check=True, env=child_environment(args))
    result = torch.load(out_path, weights_only=False)
    out_path.unlink()
    return result


def run_process(name: str, args) -> dict:
    """Whole `fusekit fuse` processes on the pair: best wall time, its CPU time and peak RSS (wait4)."""
    scratch = Path(args.scratch)
    fused = scratch / f"{name}_fused.png"
    command = [sys.executable, "-m", "fusekit", "fuse", str(PAIR[0]), str(PAIR[1]), "--task", "ivf", "--model", name,
               "--weights", str(scratch / f"{name}.safetensors"), "--text", str(scratch / f"{name}_text.safetensors"),
               "-o", str(fused), "--grey"]
    return best_process(command, fused, args, "tgif_mtif_speed")


def compare(name: str, args) -> dict:
    from fusekit.app.fuse import finish

    plain, fusekit, process = run_child(name, "plain", args), run_child(name, "fusekit", args), run_process(name, args)
    plain_png = finish(plain["out"][0, 0].numpy(), None, "clip", 8)
    return {
        "model": name, "threads": args.threads, "weights": f"random, seed {args.seed}",
        **timing_report("plain", plain, fusekit, process),
        "png_max_level_diff": int(np.abs(plain_png.astype(np.int32) - process["image"].astype(np.int32)).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tgif", "mtif"], choices=sorted(TEXT_NAMES))
    parser.add_argument("--repeats", type=int, default=1, help="forward passes / whole processes per side (best is kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", default=None)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        name, which = args.child
        torch.save(measure(name, which, args), Path(args.scratch) / f"{name}_{which}.pt")
        return
    with tempfile.TemporaryDirectory() as scratch:  # checkpoints, text features, outputs (unless --scratch)
        args.scratch = args.scratch or scratch
        agree = True
        for name in args.models:
            save_inputs(name, Path(args.scratch), args.seed)
            report = compare(name, args)
            print(json.dumps(report, indent=2), flush=True)
            agree &= report["forward_max_abs_diff"] <= RAW_TOLERANCE and report["png_max_level_diff"] <= LEVEL_TOLERANCE
    if not agree:
        raise SystemExit(f"tgif_mtif_speed: outputs differ by more than {RAW_TOLERANCE} raw or {LEVEL_TOLERANCE} grey level")


if __name__ == "__main__":
    main()
