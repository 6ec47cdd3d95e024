"""Side-by-side sheets to LOOK at: per task, DEV pairs as rows of [A, B, compact, baseline] (issue 15, point 7).

Each pair is fused by the bundled `compact` model and by the task's best training-free baseline through the same
`fuse` runner (grey output, so the comparison is about structure, not colour), the four images scaled to a common
height and written as one PNG per task: OUT/<task>.png. Look for halos, embossing, noise and washed-out regions
that the baseline does not have.

    .venv/bin/python benchmarks/side_by_side.py [--out build/side_by_side] [--pairs 4] [--height 240]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from quality import pairs_of  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("FUSEKIT_SHARED", REPO.parent / "shared"))
    parser.add_argument("--data", type=Path, default=shared / "data")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "side_by_side")
    parser.add_argument("--tasks", default="ivf,mif,mef,mff")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    from PIL import Image

    from fusekit.app.fuse import Fuser
    from fusekit.io.images import read_image, to_grey
    from fusekit.models.baselines import DEFAULT

    args.out.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        items = pairs_of(args.data, task)
        items = items[:: max(1, len(items) // args.pairs)][: args.pairs]
        fusers = [Fuser(name, task, colour="grey", device="cpu") for name in ("compact", DEFAULT[task])]
        rows = []
        for item in items:
            tiles = [to_grey(read_image(item.a)), to_grey(read_image(item.b))]
            tiles += [fuser.fuse([fuser.load(item)])[0] for fuser in fusers]
            scaled = []
            for tile in tiles:
                image = Image.fromarray(np.asarray(tile).astype(np.uint8))
                width = round(image.width * args.height / image.height)
                scaled.append(np.asarray(image.resize((width, args.height), Image.BICUBIC)))
            rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2)), constant_values=255) for t in scaled], axis=1))
        width = max(row.shape[1] for row in rows)
        sheet = np.concatenate([np.pad(row, ((0, 0), (0, width - row.shape[1])), constant_values=255) for row in rows])
        path = args.out / f"{task}.png"
        Image.fromarray(sheet).save(path)
        print(f"{path}: rows = {', '.join(item.name for item in items)}; columns = A, B, compact, {DEFAULT[task]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
