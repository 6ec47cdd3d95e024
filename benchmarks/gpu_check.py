#!/usr/bin/env python3
"""One prepared check of fusekit's GPU path: FILM, compact, the metrics and `describe` on CUDA in fp32 and bf16,
each against the CPU result, with pairs/s and peak GPU memory.

No GPU was lent while this was written, so none of its figures exist yet: run it where one is.

    .venv/bin/python benchmarks/gpu_check.py [--batch 8] [--repeats 5] [--no-compile] [--only film,compact,metrics,describe]

What it runs (real DEV images; weights as shipped or built here, nothing downloaded):

- film: the released network with the golden weights (golden/film) on one 640x480 MSRS pair, batch --batch;
  variants: fp32, bf16, fp32 with whole-image bands (`set_band_rows`: fewer, larger kernels), and
  `torch.compile` of the fp32 model (--no-compile skips it).
- compact: the bundled IVF weights on the same pair; fp32, bf16, channels-last, `torch.compile`.
- metrics: the 12 evaluator metrics of the 6 MSRS golden triples from CUDA tensors (computed on the GPU) against
  the numpy path on the CPU, in triples/s.
- describe: the tiny BLIP-2 captioner of tests/tiny_models.py (built into a temporary folder) captioning the pair
  on the GPU in fp32 and bf16 against the CPU caption.

Tolerances, against the CPU fp32 result of the same code: fused images (outputs in [0, 1]) max |diff| <= 1e-4 in
fp32 (TF32 is switched off) and <= 5e-2 in bf16; metrics within `fusekit.metrics.on_torch.agreement` (relative
1e-9; Qabf and VIF 1e-6), as tests/test_metrics_torch.py;
describe: the fp32 caption equals the CPU caption; a bf16 caption is reported, not checked (greedy decoding of a
random tiny model may take another word once logits are rounded). Exit status 1 if any check fails, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fusekit.io.images import read_image, to_grey  # noqa: E402

PAIR = [SHARED / "data" / "IVF" / "MSRS" / folder / "00040N.png" for folder in ("ir", "vi")]
FILM_WEIGHTS = SHARED / "golden" / "film" / "film_case_a_weights.safetensors"
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

failures: list[str] = []
DEVICE = "cuda"  # --device cpu runs every step on the CPU instead: a smoke test of this script without a GPU


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEVICE == "cuda":
        reset_peak()


def peak_mib() -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if DEVICE == "cuda" else float("nan")


def check(ok: bool, what: str) -> str:
    if not ok:
        failures.append(what)
    return "ok" if ok else "FAIL"


def timed(run, repeats: int) -> tuple[float, object]:
    """Best seconds of `repeats` calls (after one warm-up call), and the last result."""
    result = run()
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        synchronize()
        best = min(best, time.perf_counter() - started)
    return best, result


def pair_tensors(batch: int):
    a, b = (torch.from_numpy(to_grey(read_image(path)) / np.float32(255)) for path in PAIR)
    return a.expand(batch, 1, -1, -1).contiguous(), b.expand(batch, 1, -1, -1).contiguous()


def model_variants(name: str, weights, text_tokens: int, args) -> None:
    """A fusion model's variants on CUDA against its CPU fp32 output; one printed row per variant."""
    from fusekit.models.checkpoints import load_model

    a, b = pair_tensors(args.batch)
    text = torch.randn(args.batch, text_tokens, 768, generator=torch.Generator().manual_seed(0))
    cpu_model = load_model(name, weights, "ivf", torch.device("cpu"), torch.float32)[0]
    with torch.inference_mode():
        reference = cpu_model(a[:1], b[:1], text[:1])
    variants = [("fp32", "fp32", None), ("bf16", "bf16", None)]
    if name == "film":
        variants.append(("fp32, whole-image bands", "fp32", lambda m: m.set_band_rows(a.shape[-2]) or m))
    else:
        variants.append(("fp32, channels-last", "fp32", lambda m: m.to(memory_format=torch.channels_last)))
    if not args.no_compile:
        variants.append(("fp32, torch.compile", "fp32", torch.compile))
    for label, precision, transform in variants:
        dtype = DTYPES[precision]
        model = load_model(name, weights, "ivf", torch.device(DEVICE), dtype)[0]
        if transform is not None:
            model = transform(model)
        inputs = [t.to(DEVICE, dtype) for t in (a, b, text)]
        if "channels-last" in label:
            inputs[:2] = [t.contiguous(memory_format=torch.channels_last) for t in inputs[:2]]
        reset_peak()
        try:
            with torch.inference_mode():
                seconds, out = timed(lambda: model(*inputs), args.repeats)
        except Exception as exc:  # a variant that does not run (e.g. torch.compile without a compiler) is reported
            print(f"  {name:8} {label:26} did not run: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            failures.append(f"{name} {label} did not run")
            continue
        diff = (out[:1].float().cpu() - reference).abs().max().item()
        status = check(diff <= TOLERANCE[precision], f"{name} {label}: max |diff| {diff:.2e} > {TOLERANCE[precision]}")
        print(f"  {name:8} {label:26} {args.batch / seconds:9.2f} pairs/s  peak {peak_mib():8.0f} MiB"
              f"  max |diff| vs CPU {diff:.2e} (<= {TOLERANCE[precision]:g}) {status}")


def check_metrics(args) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from metrics_speed import load_triples

    from fusekit.metrics import compute, resolve
    from fusekit.metrics.on_torch import agreement, compute_on_device

    # On CUDA `compute` itself takes the torch path; the CPU smoke test calls that path directly.
    on_device = compute if DEVICE == "cuda" else (lambda f, a, b: compute_on_device(f, a, b, resolve(None, "evaluator")))
    triples = load_triples(6)
    started = time.perf_counter()
    expected = [compute(f, a, b) for _, f, a, b in triples]
    cpu_seconds = (time.perf_counter() - started) / len(triples)
    on_gpu = [[torch.from_numpy(x).to(DEVICE) for x in (f, a, b)] for _, f, a, b in triples]
    reset_peak()
    seconds, got = timed(lambda: [on_device(*tensors) for tensors in on_gpu], args.repeats)
    worst = {}
    for values, reference in zip(got, expected):
        for name, value in reference.items():
            relative = abs(values[name] - value) / max(abs(value), 1e-12)
            worst[name] = max(worst.get(name, 0.0), relative)
    bad = [name for name, relative in worst.items() if relative > agreement(name)]
    status = check(not bad, f"metrics differ from numpy beyond tolerance: {bad}")
    print(f"  metrics  12 evaluator, CUDA tensors   {len(triples) / seconds:9.2f} triples/s  peak "
          f"{peak_mib():8.0f} MiB  (numpy on the CPU: {1 / cpu_seconds:.2f} triples/s)"
          f"  worst relative diff {max(worst.values()):.1e} {status}")


def check_describe(args) -> None:
    from tiny_models import build_blip2_captioner

    from fusekit.guidance.describe import DescribeOptions, Pipeline

    with tempfile.TemporaryDirectory() as folder:
        build_blip2_captioner(Path(folder))
        reference = None
        for device, precision in (("cpu", "fp32"), (DEVICE, "fp32"), (DEVICE, "bf16")):
            options = DescribeOptions(device=device, precision=precision, model_paths={"blip2": folder}, max_new_tokens=20)
            pipeline = Pipeline(("blip2",), options)
            run = lambda: pipeline.describe([str(p) for p in PAIR], "ivf")  # noqa: E731
            if reference is None:  # the CPU caption the others are checked against
                reference = [image["texts"]["caption"] for image in run()["images"]]
                continue
            reset_peak()
            seconds, document = timed(run, args.repeats)
            same = [image["texts"]["caption"] for image in document["images"]] == reference
            status = check(same, "describe: fp32 caption differs from the CPU caption") if precision == "fp32" else (
                "same as CPU" if same else "differ from CPU (reported only)")
            print(f"  describe tiny BLIP-2, {precision:4}            {1 / seconds:9.2f} pairs/s  peak "
                  f"{peak_mib():8.0f} MiB  captions {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="pairs per forward for film and compact")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant after a warm-up (best kept)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants (slow to build)")
    parser.add_argument("--only", default="film,compact,metrics,describe", help="comma-separated parts to run")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device (torch.cuda.is_available() is False; run this on a machine with an "
              "NVIDIA GPU and a CUDA build of torch 2.13.0)", file=sys.stderr)
        return 2
    # Exact fp32 for the comparisons: TF32 matmuls/convolutions would round to 10-bit mantissas.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    parts = set(args.only.split(","))
    print(json.dumps({"device": torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE, "torch": torch.__version__, "batch": args.batch}))
    if "film" in parts:
        model_variants("film", FILM_WEIGHTS, 74, args)
    if "compact" in parts:
        model_variants("compact", None, 16, args)
    if "metrics" in parts:
        check_metrics(args)
    if "describe" in parts:
        check_describe(args)
    print("all checks passed" if not failures else "FAILED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
