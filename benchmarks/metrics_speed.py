#!/usr/bin/env python3
"""Speed of `fusekit.metrics.compute` (all twelve evaluator-convention metrics) against a straightforward
numpy/scipy implementation of the same definitions, both timed in this run on the 640x480 MSRS triples of
golden/metrics/.

The baseline below is what one writes by following reference/METRICS.md (and the CDDFuse/FILM evaluator) line by
line: float32 images, 2-D `scipy.signal.convolve2d` for VIF and Qabf, scikit-image's SSIM recipe with
`scipy.ndimage.uniform_filter`, scikit-learn's contingency-table MI. It is checked to give the same numbers as
fusekit (relative 1e-4) before anything is timed.

    python benchmarks/metrics_speed.py [--repeats N] [--triples N] [--per-metric]

Prints seconds per triple for the baseline and for fusekit (on one thread, and with `compute`'s default threads,
one metric per thread), the ratios, and with --per-metric each metric timed on its own on both sides (where the
time goes); exits 1 if the numbers disagree. Both run in the same process
with the allocator setting `fusekit metrics` uses (fusekit/memory.py), BLAS threads pinned to 1 unless
OPENBLAS_NUM_THREADS/OMP_NUM_THREADS say otherwise. The ratio is given for wall-clock time and for CPU time: on a
machine shared with other jobs the CPU-time ratio is the steadier of the two (and the threaded wall-clock ratio
needs idle cores to show). The load average is printed before and after: the ratios mean little without it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.signal import convolve2d

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "golden" / "metrics"

from fusekit.io.images import read_image, to_grey  # noqa: E402
from fusekit.metrics import compute  # noqa: E402
from fusekit.memory import MiB, keep_freed_memory  # noqa: E402

# --------------------------------------------------------------------------------------- straightforward baseline


def en(f):
    a = np.uint8(np.round(f)).flatten()
    h = np.bincount(a, minlength=256) / a.shape[0]
    return -np.sum(h * np.log2(h + (h == 0)))


def sd(f):
    return np.std(f)


def sf(f):
    return np.sqrt(np.mean((f[:, 1:] - f[:, :-1]) ** 2) + np.mean((f[1:, :] - f[:-1, :]) ** 2))


def ag(f):
    gx, gy = np.zeros_like(f), np.zeros_like(f)
    gx[:, 0] = f[:, 1] - f[:, 0]
    gx[:, -1] = f[:, -1] - f[:, -2]
    gx[:, 1:-1] = (f[:, 2:] - f[:, :-2]) / 2
    gy[0, :] = f[1, :] - f[0, :]
    gy[-1, :] = f[-1, :] - f[-2, :]
    gy[1:-1, :] = (f[2:, :] - f[:-2, :]) / 2
    return np.mean(np.sqrt((gx ** 2 + gy ** 2) / 2))


def mutual_info_score(x, y):
    """scikit-learn's mutual_info_score: contingency table of the distinct values, natural log."""
    xv, xi = np.unique(x, return_inverse=True)
    yv, yi = np.unique(y, return_inverse=True)
    cont = np.zeros((len(xv), len(yv)))
    np.add.at(cont, (xi.ravel(), yi.ravel()), 1)
    nzx, nzy = np.nonzero(cont)
    nz = cont[nzx, nzy]
    total = cont.sum()
    pi, pj = cont.sum(axis=1), cont.sum(axis=0)
    outer = pi[nzx] * pj[nzy]
    mi = nz / total * (np.log(nz) - np.log(total)) + nz / total * (-np.log(outer) + 2 * np.log(total))
    return max(float(mi.sum()), 0.0)


def mi(f, a, b):
    return mutual_info_score(f.flatten(), a.flatten()) + mutual_info_score(f.flatten(), b.flatten())


def mse(f, a, b):
    return (np.mean((a - f) ** 2) + np.mean((b - f) ** 2)) / 2


def corr(x, y):
    return np.sum((x - x.mean()) * (y - y.mean())) / np.sqrt(np.sum((x - x.mean()) ** 2) * np.sum((y - y.mean()) ** 2))


def cc(f, a, b):
    return (corr(a, f) + corr(b, f)) / 2


def psnr(f, a, b):
    return 10 * np.log10(np.max(f) ** 2 / mse(f, a, b))


def scd(f, a, b):
    return corr(a, f - b) + corr(b, f - a)


def fspecial_gaussian(shape, sigma):
    m, n = [(ss - 1.0) / 2.0 for ss in shape]
    y, x = np.ogrid[-m:m + 1, -n:n + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def vifp(ref, dist):
    eps, sigma_nsq, num, den = 1e-10, 2.0, 0.0, 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = fspecial_gaussian((n, n), n / 5)
        if scale > 1:
            ref = convolve2d(ref, np.rot90(win, 2), mode="valid")[::2, ::2]
            dist = convolve2d(dist, np.rot90(win, 2), mode="valid")[::2, ::2]
        mu1 = convolve2d(ref, np.rot90(win, 2), mode="valid")
        mu2 = convolve2d(dist, np.rot90(win, 2), mode="valid")
        s1 = convolve2d(ref * ref, np.rot90(win, 2), mode="valid") - mu1 * mu1
        s2 = convolve2d(dist * dist, np.rot90(win, 2), mode="valid") - mu2 * mu2
        s12 = convolve2d(ref * dist, np.rot90(win, 2), mode="valid") - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        g[s1 < eps] = 0
        sv[s1 < eps] = s2[s1 < eps]
        s1[s1 < eps] = 0
        g[s2 < eps] = 0
        sv[s2 < eps] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= eps] = eps
        num += np.sum(np.log10(1.0 + g ** 2 * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1.0 + s1 / sigma_nsq))
    value = num / den
    return 1.0 if np.isnan(value) else value


def vif(f, a, b):
    return vifp(a, f) + vifp(b, f)


def qabf_arrays(img):
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float32)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
    sx = convolve2d(img, h3, mode="same")
    sy = convolve2d(img, h1, mode="same")
    g = np.sqrt(sx * sx + sy * sy)
    angle = np.zeros_like(img)
    angle[sx == 0] = math.pi / 2
    angle[sx != 0] = np.arctan(sy[sx != 0] / sx[sx != 0])
    return g, angle


def qabf_q(a_x, g_x, a_f, g_f):
    ratio = np.zeros_like(a_x)
    ratio[g_x > g_f] = g_f[g_x > g_f] / g_x[g_x > g_f]
    ratio[g_x == g_f] = g_f[g_x == g_f]
    ratio[g_x < g_f] = g_x[g_x < g_f] / g_f[g_x < g_f]
    orientation = 1 - np.abs(a_x - a_f) / (math.pi / 2)
    return 0.9994 / (1 + np.exp(-15 * (ratio - 0.5))) * 0.9879 / (1 + np.exp(-22 * (orientation - 0.8)))


def qabf(f, a, b):
    g_a, a_a = qabf_arrays(a)
    g_b, a_b = qabf_arrays(b)
    g_f, a_f = qabf_arrays(f)
    q_af, q_bf = qabf_q(a_a, g_a, a_f, g_f), qabf_q(a_b, g_b, a_f, g_f)
    return np.sum(q_af * g_a + q_bf * g_b) / np.sum(g_a + g_b)


def ssim_one(x, y):
    """scikit-image structural_similarity(x, y, data_range=255) with its defaults."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    win, ndim = 7, 2
    ux, uy = uniform_filter(x, win), uniform_filter(y, win)
    uxx, uyy, uxy = uniform_filter(x * x, win), uniform_filter(y * y, win), uniform_filter(x * y, win)
    cov_norm = win ** ndim / (win ** ndim - 1)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return s[pad:-pad, pad:-pad].mean()


def ssim(f, a, b):
    return ssim_one(f, a) + ssim_one(f, b)


BASELINE = {"EN": en, "SD": sd, "SF": sf, "AG": ag}
BASELINE_WITH_SOURCES = {"MI": mi, "MSE": mse, "CC": cc, "PSNR": psnr, "SCD": scd, "VIF": vif, "Qabf": qabf, "SSIM": ssim}


def baseline(f, a, b) -> dict[str, float]:
    values = {name: float(fn(f)) for name, fn in BASELINE.items()}
    values.update({name: float(fn(f, a, b)) for name, fn in BASELINE_WITH_SOURCES.items()})
    return values


# --------------------------------------------------------------------------------------------------- timing


def load_triples(limit: int) -> list[tuple]:
    rows = json.loads((GOLDEN / "dev_reference.json").read_text())["rows"]
    triples = []
    for row in rows:
        if row["dataset"] != "MSRS":
            continue
        images = [read_image(GOLDEN / "fused" / row["f"]), read_image(SHARED / "data" / row["a"]), read_image(SHARED / "data" / row["b"])]
        f, a, b = (to_grey(image) for image in images)  # float32 grey, the evaluator's reading
        triples.append((row["name"] + "_" + row["fusion"], f, a, b))
    return triples[:limit]


def best_of(repeats: int, run) -> tuple[float, float, dict]:
    """(best wall s, best CPU s, last result) of `repeats` calls of `run`."""
    wall_best = cpu_best = math.inf
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        wall_best, cpu_best = min(wall_best, time.perf_counter() - wall), min(cpu_best, time.process_time() - cpu)
    return wall_best, cpu_best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each implementation per triple (the best is kept)")
    parser.add_argument("--triples", type=int, default=6, help="number of MSRS triples (at most 6)")
    parser.add_argument("--per-metric", action="store_true", help="also time every metric on its own, both sides")
    args = parser.parse_args()
    keep_freed_memory(largest_block=32 * MiB, kept=512 * MiB)  # as `fusekit metrics` does; applies to both implementations alike
    triples = load_triples(args.triples)
    height, width = triples[0][1].shape
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{len(triples)} MSRS triples of {width}x{height}, all 12 evaluator-convention metrics; "
          f"{cores} usable cores, load average {os.getloadavg()[0]:.2f}")

    sides = {"baseline": baseline, "fusekit, 1 thread": lambda f, a, b: compute(f, a, b, threads=1),
             "fusekit, default threads": compute}
    totals = {side: [0.0, 0.0] for side in sides}  # [wall, cpu] seconds, summed over triples
    per_metric = {}  # metric -> [baseline s, fusekit s], summed over triples
    mismatches = 0
    for name, f, a, b in triples:
        results = {}
        for _ in range(args.repeats):  # interleaved, so all sides see the same machine load; best of each kept
            for side, run in sides.items():
                wall, cpu, values = best_of(1, lambda: run(f, a, b))
                best = results.setdefault(side, [math.inf, math.inf, values])
                results[side] = [min(best[0], wall), min(best[1], cpu), values]
        for side in sides:
            totals[side] = [totals[side][0] + results[side][0], totals[side][1] + results[side][1]]
        expected = results["baseline"][2]
        for side in list(sides)[1:]:
            for metric, reference in expected.items():
                got = results[side][2][metric]
                if abs(got - reference) > 1e-4 * max(1.0, abs(reference)):
                    mismatches += 1
                    print(f"MISMATCH {name} {metric} ({side}): fusekit {got!r} baseline {reference!r}")
        if args.per_metric:
            for metric in expected:
                fn = BASELINE.get(metric)
                slow = (lambda: fn(f)) if fn else (lambda: BASELINE_WITH_SOURCES[metric](f, a, b))
                base_s = best_of(args.repeats, slow)[0]
                fast_s = best_of(args.repeats, lambda: compute(f, a, b, metrics=[metric], threads=1))[0]
                row = per_metric.setdefault(metric, [0.0, 0.0])
                row[0], row[1] = row[0] + base_s, row[1] + fast_s

    n = len(triples)
    if per_metric:
        print(f"{'metric':>6} {'baseline ms':>12} {'fusekit ms':>11} {'ratio':>7}   (each on its own, wall, per triple)")
        for metric, (base_s, fast_s) in sorted(per_metric.items(), key=lambda item: -item[1][1]):
            print(f"{metric:>6} {base_s / n * 1000:12.1f} {fast_s / n * 1000:11.1f} {base_s / fast_s:7.1f}")
    base_wall, base_cpu = (x / n for x in totals["baseline"])
    print(f"baseline (numpy/scipy, 2-D convolutions): {base_wall:.3f} s wall, {base_cpu:.3f} s CPU per triple")
    for side in list(sides)[1:]:
        wall, cpu = (x / n for x in totals[side])
        print(f"{side + ':':<41} {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU per triple ({1 / wall:.1f} triples/s); "
              f"ratio {base_wall / wall:.1f}x (wall), {base_cpu / cpu:.1f}x (CPU)")
    print(f"identical numbers (relative 1e-4): {'yes' if not mismatches else 'NO'}; load average now {os.getloadavg()[0]:.2f}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
