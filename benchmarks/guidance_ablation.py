"""Does the bundled `compact` model use its text? An ablation on degraded DEV pairs (issue 15).

For every DEV pair of a task (`shared/data`) and every degradation recipe of the task
(`fusekit.models.degrade.TASK_DEGRADATIONS`, fixed seed per pair and recipe), the degraded pair is fused three ways:

- own:   with its own text, the `stats` describer's description of the DEGRADED pair, which names what is wrong
         ("Degradation: the visible image is dark (under-exposed) and noisy."), as `fusekit fuse` makes it;
- wrong: with the same description minus the degradation findings (text that does not name the degradation);
- none:  with no text (the encoder's start token only).

Each is scored against the reference, the clean pair fused with the clean pair's own text (PSNR in dB and SSIM on
the 8-bit grey outputs), and with the six metrics (EN, SD, SF, AG, VIF, Qabf) against the CLEAN sources. Then the
text-swap test: every degraded pair fused with the text of the next pair under the next recipe (another pair,
another degradation) instead of its own, mean |change| in grey levels; the same swap between the clean pairs is
printed too (their texts name nothing, so they differ only in what the describer measured, which the model sees
for itself in the pixels).

Bar (issue 15, on the degraded pairs): own text beats wrong text by >= 1 dB for every degradation kind, and
another pair's text changes the output by >= 1 grey level on average. Exit 1 when a bar is not met.
--markdown prints the tables of docs/MODELS.md.

    .venv/bin/python benchmarks/guidance_ablation.py [--data ../shared/data] [--tasks ivf,mif,mef,mff]
                                                     [--pairs N] [--weights-dir DIR] [--json out.json]
                                                     [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from quality import METRICS, pairs_of  # noqa: E402  (the DEV layout, one place)

VARIANTS = ("own", "wrong", "none")


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = float(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim_8bit(x: np.ndarray, y: np.ndarray) -> float:
    import torch

    from fusekit.models.losses import ssim

    as_tensor = lambda z: torch.from_numpy(z.astype(np.float32) / 255)[None, None]  # noqa: E731
    return float(ssim(as_tensor(x), as_tensor(y)))


class Runner:
    """The bundled (or given) compact weights of one task, fusing grey uint8 arrays with given text tokens."""

    def __init__(self, task: str, weights: str | None):
        from fusekit.models.checkpoints import load_model

        self.task = task
        self.model, _ = load_model("compact", weights, task, "cpu")

    def fuse(self, a: np.ndarray, b: np.ndarray, text: np.ndarray) -> np.ndarray:
        import torch

        as_tensor = lambda z: torch.from_numpy(z.astype(np.float32) / 255)[None, None]  # noqa: E731
        with torch.inference_mode():
            fused = self.model(as_tensor(a), as_tensor(b), torch.from_numpy(text)[None])
        return np.round(fused[0, 0].numpy().clip(0, 1) * 255).astype(np.uint8)


def texts_for(a: np.ndarray, b: np.ndarray, task: str, name: str) -> dict[str, np.ndarray]:
    from fusekit.app.train.degraded import measure_pair, pair_texts, text_features
    from fusekit.guidance.text.offline import embed

    measured = measure_pair(a, b)  # once for both texts
    return {"own": text_features(pair_texts(a, b, task, name, measured=measured), task),
            "wrong": text_features(pair_texts(a, b, task, name, findings=False, measured=measured), task),
            "none": embed("")}


def grey_pair(item) -> tuple[np.ndarray, np.ndarray]:
    from fusekit.io.images import read_image, to_grey

    return tuple(to_grey(read_image(path)).astype(np.uint8) for path in (item.a, item.b))


def run_task(task: str, items, weights: str | None) -> dict:
    from fusekit.app.train.degraded import to_uint8
    from fusekit.metrics import compute
    from fusekit.models import degrade

    runner = Runner(task, weights)
    kinds = {}
    swaps = {"clean": [], "degraded": []}
    clean = [grey_pair(item) for item in items]
    stem = lambda item: item.name.split("-", 1)[1]  # noqa: E731  (pairs_of names are <dataset>-<stem>)
    clean_texts = [texts_for(a, b, task, stem(item))["own"] for item, (a, b) in zip(items, clean)]
    references = [runner.fuse(a, b, text) for (a, b), text in zip(clean, clean_texts)]
    for index, (item, (a, b), reference) in enumerate(zip(items, clean, references)):
        other = (index + 1) % len(items)
        swaps["clean"].append(float(np.abs(runner.fuse(a, b, clean_texts[other]).astype(np.float64) - reference).mean()))
        degraded_texts = []
        for recipe_index, (role, recipe) in enumerate(degrade.TASK_DEGRADATIONS[task]):
            rng = np.random.default_rng([index, recipe_index])
            pair = {"a": a, "b": b}
            source = pair[role].astype(np.float32) / 255
            if not all(degrade.applicable(kind, source) for kind in recipe):
                continue  # e.g. over-exposing a night image (it would have to be turned white)
            pair[role] = to_uint8(degrade.degrade(source, recipe, rng))
            texts = texts_for(pair["a"], pair["b"], task, stem(item))
            degraded_texts.append((pair, texts["own"]))
            label = f"{'+'.join(recipe)} ({role})"
            rows = kinds.setdefault(label, {variant: [] for variant in VARIANTS})
            for variant in VARIANTS:
                fused = runner.fuse(pair["a"], pair["b"], texts[variant])
                row = {"PSNR": psnr(fused, reference), "SSIM": ssim_8bit(fused, reference)}
                row.update(compute(fused, a, b, metrics=list(METRICS)))
                rows[variant].append(row)
        # degraded swap: recipe r of this pair fused with the text of recipe r + 1 (another degradation) of the next pair
        for recipe_index, (pair, own_text) in enumerate(degraded_texts):
            other_pair = (index + 1) % len(items)
            role, recipe = degrade.TASK_DEGRADATIONS[task][(recipe_index + 1) % len(degrade.TASK_DEGRADATIONS[task])]
            oa, ob = clean[other_pair]
            other = {"a": oa, "b": ob}
            source = other[role].astype(np.float32) / 255
            if all(degrade.applicable(kind, source) for kind in recipe):
                other[role] = to_uint8(degrade.degrade(source, recipe, np.random.default_rng([other_pair, recipe_index])))
            other_text = texts_for(other["a"], other["b"], task, stem(items[other_pair]))["own"]
            mine = runner.fuse(pair["a"], pair["b"], own_text).astype(np.float64)
            swaps["degraded"].append(float(np.abs(runner.fuse(pair["a"], pair["b"], other_text) - mine).mean()))
    means = {label: {variant: {key: float(np.mean([row[key] for row in rows[variant]])) for key in rows[variant][0]}
                     for variant in VARIANTS} for label, rows in kinds.items()}
    return {"pairs": len(items), "kinds": means, "swap_clean": float(np.mean(swaps["clean"])),
            "swap_degraded": float(np.mean(swaps["degraded"]))}


def print_markdown(results: dict) -> None:
    """The ablation and swap tables of docs/MODELS.md."""
    print("| task | degradation | own PSNR / SSIM | wrong PSNR / SSIM | none PSNR / SSIM | own − wrong | VIF own / wrong | Qabf own / wrong |")
    print("|---|---|---|---|---|---|---|---|")
    for task, result in results.items():
        for label, table in result["kinds"].items():
            own, wrong, none = (table[variant] for variant in VARIANTS)
            cells = [f"{row['PSNR']:.2f} / {row['SSIM']:.3f}" for row in (own, wrong, none)]
            print(f"| {task} | {label} | " + " | ".join(cells) + f" | {own['PSNR'] - wrong['PSNR']:+.2f} dB | "
                  f"{own['VIF']:.3f} / {wrong['VIF']:.3f} | {own['Qabf']:.3f} / {wrong['Qabf']:.3f} |")
    print("\n| task | pairs | another pair's text: mean change on degraded pairs | between clean pairs |")
    print("|---|---|---|---|")
    for task, result in results.items():
        print(f"| {task} | {result['pairs']} | {result['swap_degraded']:.2f} grey levels | {result['swap_clean']:.2f} grey levels |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("FUSEKIT_SHARED", REPO.parent / "shared"))
    parser.add_argument("--data", type=Path, default=shared / "data")
    parser.add_argument("--tasks", default="ivf,mif,mef,mff")
    parser.add_argument("--pairs", type=int, default=0, help="first N pairs per task (0: all)")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true", help="also print the tables as docs/MODELS.md has them")
    parser.add_argument("--from-json", type=Path, nargs="*", default=None,
                        help="print the tables of earlier --json files instead of measuring")
    args = parser.parse_args()

    if args.from_json:
        results = {task: result for path in args.from_json for task, result in json.loads(path.read_text()).items()}
        print_markdown(results)
        return 0

    import torch

    torch.set_num_threads(1)
    results, bar_met = {}, True
    for task in args.tasks.split(","):
        items = pairs_of(args.data, task)
        items = items[: args.pairs] if args.pairs else items
        weights = str(args.weights_dir / f"compact_{task}.safetensors") if args.weights_dir else None
        result = run_task(task, items, weights)
        results[task] = result
        print(f"\n{task.upper()} ({result['pairs']} pairs): against the clean pair's fusion; metrics against the clean sources")
        print(f"{'degradation':<26}{'text':<7}{'PSNR':>7}{'SSIM':>7}" + "".join(f"{m:>8}" for m in METRICS) + f"{'own-wrong':>11}")
        for label, table in result["kinds"].items():
            gain = table["own"]["PSNR"] - table["wrong"]["PSNR"]
            bar_met &= gain >= 1.0
            for variant in VARIANTS:
                row = table[variant]
                extra = f"{gain:>+10.2f}{'' if gain >= 1 else ' <1'}" if variant == "own" else ""
                print(f"{label if variant == 'own' else '':<26}{variant:<7}{row['PSNR']:>7.2f}{row['SSIM']:>7.3f}"
                      + "".join(f"{row[m]:>8.3f}" for m in METRICS) + extra)
        bar_met &= result["swap_degraded"] >= 1.0
        print(f"another pair's text: mean |change| {result['swap_degraded']:.2f} grey levels on degraded pairs "
              f"(bar >= 1), {result['swap_clean']:.2f} between clean pairs")
    print(f"\nbar (own beats wrong by >= 1 dB for every kind; swap >= 1 grey level): {'met' if bar_met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.markdown:
        print_markdown(results)
    return 0 if bar_met else 1


if __name__ == "__main__":
    sys.exit(main())
