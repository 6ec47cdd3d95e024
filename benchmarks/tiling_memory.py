"""Peak memory of `fusekit fuse` on a 4000 × 3000 pair with the bundled `compact` model (tiled inference).

A real DEV pair (IVF RoadScene FLIR_06570; with `--task mef`, MEFB Lamp, whose model blends the whole image
band by band after tiling its local layers) is upscaled (bicubic) to 4000 × 3000 and fused by the real CLI in a
child process; its peak resident set size (`ru_maxrss` of the child) is the number. Large pairs are fused in
overlapping tiles (`fusekit.app.tiling`: 512-px tiles, 96-px overlap), which keeps activations bounded; the
untiled run (`--untiled`, the same command with tiling switched off in the child) is measured only on request,
because it needs several GB (8.6 GB before tiling, issue 15).

Bar: the tiled run stays under 2 GiB; exit 1 otherwise.

    .venv/bin/python benchmarks/tiling_memory.py [--task ivf|mef] [--untiled] [--weights W]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSEKIT_SHARED", REPO.parent / "shared"))
BAR_BYTES = 2 * 2**30
SIZE = (4000, 3000)
PAIRS = {"ivf": ("IVF/RoadScene", ("ir", "vi"), "FLIR_06570"), "mef": ("MEF/MEFB", ("over", "under"), "Lamp")}

CHILD = """
import sys
import fusekit.app.tiling as tiling
if sys.argv.pop(1) == "untiled":
    tiling.TILE_ABOVE_PIXELS = 10**12
from fusekit.cli import main
sys.argv[0] = "fusekit"
main()
"""


def peak_rss(args: list[str], untiled: bool) -> tuple[int, float]:
    """(peak RSS in bytes, wall seconds) of one `fusekit` run in a fresh child process."""
    import time

    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, "untiled" if untiled else "tiled", *args],
                             env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2")))
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fusekit {' '.join(args)} failed")
    return usage.ru_maxrss * 1024, time.perf_counter() - started  # Linux reports kB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--untiled", action="store_true", help="also measure the untiled run (needs several GB)")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--task", choices=sorted(PAIRS), default="ivf")
    args = parser.parse_args()
    from PIL import Image

    folder, roles, name = PAIRS[args.task]
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for role in roles:
            path = Path(scratch) / f"{role}.png"
            Image.open(SHARED / "data" / folder / role / f"{name}.png").resize(SIZE, Image.BICUBIC).save(path)
            paths.append(str(path))
        command = ["fuse", *paths, "--task", args.task, "--model", "compact", "-o", str(Path(scratch) / "fused.png")]
        command += ["--weights", args.weights] if args.weights else []
        runs = [("tiled", False)] + ([("untiled", True)] if args.untiled else [])
        results = {}
        for label, untiled in runs:
            rss, wall = peak_rss(command, untiled)
            results[label] = rss
            print(f"{label:>8}: peak RSS {rss / 2**30:.2f} GiB, {wall:.0f} s ({SIZE[0]} x {SIZE[1]} {args.task} pair, compact, CPU)")
        if "untiled" in results:
            print(f"untiled / tiled peak memory: {results['untiled'] / results['tiled']:.1f}x")
    ok = results["tiled"] < BAR_BYTES
    print(f"bar (tiled < 2 GiB): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
