"""fusekit's `film` against a straightforward transcription of the released FILM forward pass (same run).

The figure that matters to a user is the whole `fusekit fuse --model film` process (Python and PyTorch start-up,
model build, weight load, reading the pair and its text features, the forward pass, post-processing, writing the
PNG) against the released forward pass alone. For one real 640 x 480 pair (MSRS 00040N, DEV set) on the CPU (or
--device cuda) this measures, each in a fresh subprocess so that no side inherits the other's memory high-water
mark or warm caches:

- released: the best wall and CPU time of `--repeats` forward passes of the transcription below, and its peak RSS;
- fusekit forward: the same for `fusekit.models.film.FILM` (forward against forward);
- fusekit process: the best wall time of `--repeats` whole `fusekit fuse` processes, their CPU time (from wait4)
  and peak RSS.

Outputs are compared both ways: the largest absolute difference between the two raw forward outputs, and the
largest difference in grey levels between the PNG that `fusekit fuse --postprocess film --grey` wrote and the
released script's post-processing of the released forward's output. The released transcription keeps the
released parameter names and evaluation order (whole-image transformer blocks, nn.MultiheadAttention over 13,824
image tokens) so it loads the released checkpoint layout directly.

    .venv/bin/python benchmarks/film_speed.py [--repeats 2] [--threads 2] [--device cpu]
    .venv/bin/python benchmarks/film_speed.py --device cuda --precision bf16 --batch 8   # pairs/second on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
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

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "golden" / "film" / "film_case_a_weights.safetensors"
PAIR = [REPO.parent / "shared" / "data" / "IVF" / "MSRS" / folder / "00040N.png" for folder in ("ir", "vi")]
TEXT_TOKENS = 74  # two BLIP-2 descriptions' worth of tokens, as in the released VLF files


# ---------------------------------------------------------------- released forward pass, transcribed as written


class LayerNormWithBias(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(sigma + 1e-5) * self.weight + self.bias


class LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.body = LayerNormWithBias(dim)

    def forward(self, x):
        h, w = x.shape[-2:]
        y = self.body(x.flatten(2).transpose(1, 2))  # b (h w) c
        return y.transpose(1, 2).reshape(x.shape[0], -1, h, w)


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q = q.reshape(b, self.num_heads, -1, h * w)
        k = k.reshape(b, self.num_heads, -1, h * w)
        v = v.reshape(b, self.num_heads, -1, h * w)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        out = (attn @ v).reshape(b, c, h, w)
        return self.project_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, ffn_expansion_factor):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x):
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    def __init__(self, dim, num_heads=8, ffn_expansion_factor=4):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_expansion_factor)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class CrossAttention(nn.Module):
    def __init__(self, embed_dim=256, num_heads=8):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)

    def forward(self, query, key, value):
        return self.multihead_attn(query, key, value)[0]


class ImageToText(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        x = F.interpolate(self.conv(x), size=(288, 384), mode="nearest")
        return x.reshape(x.shape[0], -1, self.hidden_dim)


class RestormerCA(nn.Module):
    def __init__(self, in_ch, mid=32, hidden_dim=256):
        super().__init__()
        for side in "AB":
            setattr(self, f"conv{side}1", nn.Conv2d(in_ch, mid, 3, padding=1, bias=False))
            setattr(self, f"prelu{side}1", nn.PReLU())
            setattr(self, f"conv{side}2", nn.Conv2d(mid, mid, 1))
            setattr(self, f"prelu{side}2", nn.PReLU())
            setattr(self, f"conv{side}3", nn.Conv2d(2 * mid, mid, 1))
            setattr(self, f"prelu{side}3", nn.PReLU())
            setattr(self, f"restormer{side}1", TransformerBlock(mid))
            setattr(self, f"imagef2textf{side}1", ImageToText(mid, hidden_dim))
        self.cross_attentionA1 = CrossAttention(hidden_dim)
        self.cross_attentionA2 = CrossAttention(hidden_dim)

    def branch(self, side, x, text, attention):
        h, w = x.shape[-2:]
        f = getattr(self, f"restormer{side}1")(getattr(self, f"prelu{side}1")(getattr(self, f"conv{side}1")(x)))
        tokens = getattr(self, f"imagef2textf{side}1")(f)
        c = attention(text, tokens, tokens)
        weight = F.normalize(c.mean(dim=1, keepdim=True), p=1, dim=-1)
        g = (tokens * weight).reshape(x.shape[0], -1, 288, 384)
        g = F.interpolate(g, size=(h, w), mode="nearest")
        f = F.interpolate(f, size=(h, w), mode="nearest")
        g = getattr(self, f"prelu{side}2")(getattr(self, f"conv{side}2")(g)) + f
        return getattr(self, f"prelu{side}3")(getattr(self, f"conv{side}3")(torch.cat([f, g], dim=1)))

    def forward(self, a, b, text):
        return self.branch("A", a, text, self.cross_attentionA1), self.branch("B", b, text, self.cross_attentionA2)


class TextProcess(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(768, 256, 1)

    def forward(self, text):
        return self.conv(text.transpose(1, 2)).transpose(1, 2)


class ReleasedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.text_process = TextProcess()
        self.restormerca1 = RestormerCA(1)
        self.restormerca2 = RestormerCA(32)
        self.restormerca3 = RestormerCA(32)
        self.restormer1 = TransformerBlock(64)
        self.conv1 = nn.Conv2d(64, 32, 1)
        self.restormer2 = TransformerBlock(32)
        self.restormer3 = TransformerBlock(32)
        self.conv2 = nn.Conv2d(32, 1, 1)

    def forward(self, a, b, text):
        text = self.text_process(text)
        a, b = self.restormerca1(a, b, text)
        a, b = self.restormerca2(a, b, text)
        a, b = self.restormerca3(a, b, text)
        x = self.conv1(self.restormer1(torch.cat([a, b], dim=1)))
        x = self.restormer3(self.restormer2(x))
        return torch.sigmoid(self.conv2(x))


# ------------------------------------------------------------------------------------------------ measuring


def build(which: str, device, dtype):
    from safetensors.torch import load_file

    state = {key.removeprefix("module."): value for key, value in load_file(str(WEIGHTS)).items()}
    if which == "released":
        net = ReleasedNet()
        net.load_state_dict(state)
        return net.to(device, dtype).eval()
    sys.path.insert(0, str(REPO))
    from fusekit.models.checkpoints import load_model

    return load_model("film", WEIGHTS, "ivf", device, dtype)[0]


def inputs(batch, device, dtype):
    """The pair as `fusekit fuse` feeds it to FILM (grey, rounded, /255) and the text features written for it."""
    sys.path.insert(0, str(REPO))
    from fusekit.io.images import read_image, to_grey

    a, b = (torch.from_numpy(to_grey(read_image(path)) / np.float32(255)).expand(batch, 1, -1, -1) for path in PAIR)
    return [t.to(device, dtype) for t in (a, b, text_features()[None].expand(batch, -1, -1))]


def text_features() -> torch.Tensor:
    return torch.randn(TEXT_TOKENS, 768, generator=torch.Generator().manual_seed(0))


def measure(which: str, repeats: int, device: str, precision: str, batch: int) -> dict:
    """One implementation in this process: best wall time of `repeats` forwards, peak memory, output."""
    device = torch.device(device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    net = build(which, device, dtype)
    a, b, text = inputs(batch, device, dtype)
    times, cpu_times = [], []
    if device.type == "cuda":
        with torch.inference_mode():
            net(a, b, text)  # warm-up: kernels, allocator
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            out = net(a, b, text)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": min(times), "cpu_seconds": min(cpu_times), "peak_mib": peak, "out": out.float().cpu()}


def child_environment(args) -> dict:
    """Every subprocess runs with the threads asked for and the OpenMP wait policy the `fusekit` command sets
    (fusekit/cli/__init__.py), so the released forward and fusekit see the same thread behaviour."""
    return dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))


def run_child(which: str, args) -> dict:
    out_path = Path(args.scratch) / f"{which}.pt"
    command = [sys.executable, __file__, "--child", which, "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--device", args.device, "--precision", args.precision,
               "--batch", str(args.batch), "--scratch", args.scratch]
    subprocess.run(command, check=True, env=child_environment(args))
    result = torch.load(out_path, weights_only=False)
    out_path.unlink()
    return result


def run_process(args) -> dict:
    """Whole `fusekit fuse` processes on the pair: best wall time, its CPU time and the peak RSS (wait4)."""
    sys.path.insert(0, str(REPO))
    from fusekit.io.formats import sha256_file, write_safetensors

    scratch = Path(tempfile.mkdtemp(dir=args.scratch))
    text = scratch / "text.safetensors"
    write_safetensors(str(text), "text-features", {"text": text_features()}, {
        "encoder": "blip2", "dim": "768", "image_sha256_a": sha256_file(PAIR[0]), "image_sha256_b": sha256_file(PAIR[1])})
    fused = scratch / "fused.png"
    command = [sys.executable, "-m", "fusekit", "fuse", str(PAIR[0]), str(PAIR[1]), "--task", "ivf", "--model", "film",
               "--weights", str(WEIGHTS), "--text", str(text), "-o", str(fused), "--grey", "--postprocess", "film",
               "--device", args.device, "--precision", args.precision]
    return best_process(command, fused, args, "film_speed")


def timing_report(side: str, reference: dict, fusekit: dict, process: dict) -> dict:
    """Times, ratios, peak memory and the raw output difference of a reference forward (`side`: its name in the
    keys) against fusekit's forward and whole process, as the speed benchmarks print them."""
    return {
        f"{side}_forward_s": round(reference["seconds"], 3), "fusekit_forward_s": round(fusekit["seconds"], 3),
        "fusekit_process_s": round(process["seconds"], 3),
        "forward_speedup": round(reference["seconds"] / fusekit["seconds"], 2),
        "process_speedup": round(reference["seconds"] / process["seconds"], 2),
        f"{side}_forward_cpu_s": round(reference["cpu_seconds"], 3), "fusekit_forward_cpu_s": round(fusekit["cpu_seconds"], 3),
        "fusekit_process_cpu_s": round(process["cpu_seconds"], 3),
        "forward_cpu_ratio": round(reference["cpu_seconds"] / fusekit["cpu_seconds"], 2),
        "process_cpu_ratio": round(reference["cpu_seconds"] / process["cpu_seconds"], 2),
        f"{side}_peak_mib": round(reference["peak_mib"], 1), "fusekit_forward_peak_mib": round(fusekit["peak_mib"], 1),
        "fusekit_process_peak_mib": round(process["peak_mib"], 1),
        "forward_max_abs_diff": (reference["out"] - fusekit["out"]).abs().max().item(),
    }


def best_process(command: list[str], fused: Path, args, label: str) -> dict:
    """`args.repeats` whole `fusekit fuse` processes writing `fused`: the best wall time, that run's CPU time and
    peak RSS (from wait4), and the image it wrote."""
    environment = dict(child_environment(args), PYTHONPATH=str(REPO))
    best = {"seconds": float("inf")}
    for _ in range(args.repeats):
        fused.unlink(missing_ok=True)
        started = time.perf_counter()
        child = subprocess.Popen(command, env=environment)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{label}: error: {' '.join(command)} failed")
        if seconds < best["seconds"]:
            best = {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}
    from fusekit.io.images import read_image

    best["image"] = read_image(str(fused))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="forward passes / whole processes per side (best is kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--batch", type=int, default=1, help="pairs per forward (forward timings only)")
    parser.add_argument("--scratch", default="/tmp")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        result = measure(args.child, args.repeats, args.device, args.precision, args.batch)
        torch.save(result, Path(args.scratch) / f"{args.child}.pt")
        return
    released = run_child("released", args)
    fusekit = run_child("fusekit", args)
    process = run_process(args)
    sys.path.insert(0, str(REPO))
    from fusekit.app.fuse import film_postprocess

    released_png = film_postprocess(released["out"][0, 0].numpy())
    level_diff = int(np.abs(released_png.astype(np.int32) - process["image"].astype(np.int32)).max())
    report = {
        "pair": "MSRS 00040N, 640x480", "batch": args.batch, "device": args.device, "precision": args.precision,
        "threads": args.threads,
        **timing_report("released", released, fusekit, process),
        "fusekit_pairs_per_s": round(args.batch / fusekit["seconds"], 3),
        "png_max_level_diff": level_diff,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
