"""`fusekit semantics`: TeSG's Semantic Information Generator, infrared + visible pair → semantics file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import FusekitError, UsageError
from . import command
from .batching import pair_output, run_work, work_for
from .options import Device, Manifest, Precision, Shard, SkipExisting, Summary, Task, check_task

HELP = """Make TeSG's guidance: an object mask and text semantics for an infrared-visible pair (docs/models/TESG.md).

The caption T of the visible image (B) comes from --caption, from a descriptions JSON (--descriptions, e.g. `fusekit describe ir.png vi.png --task ivf --backend blip2`; the role-b caption is used), or else from running a describe backend (--captioner, default blip2) on the visible image. The key-object word (person, car, ...) is removed from T; a Stable Diffusion UNet predicts the noise of each noised image under both captions, and the normalised, binarised difference is that image's mask; the two masks are united. The text semantics are the diffusion text encoder's features of T. --mask FILE (repeatable) gives the mask instead (their union); then only the text encoder runs.

Needs Stable Diffusion weights (--diffusion-model: a Hugging Face id in the cache or a local diffusers folder) and, for the diffusion masks, diffusers (the diffusion extra of fusekit, or pip install diffusers); with --mask only the text encoder is loaded.

One pair writes -o FILE.safetensors; two folders or --manifest write -o DIR/<name>.safetensors (manifest fields: caption, mask = one mask image, out). Give them to `fusekit fuse --model tesg --semantics` or `fusekit train --model tesg --semantics`.

Example: fusekit semantics ir.png vi.png --task ivf --caption "a man walking past a parked car" -o pair.safetensors
"""


def _caption_from_descriptions(path: str) -> str:
    """The visible (role b) image's caption in a descriptions JSON."""
    from ..io.formats import read_descriptions

    document = read_descriptions(path)
    for image in document["images"]:
        caption = image["texts"].get("caption")
        if image["role"] == "b" and isinstance(caption, str) and caption.strip():
            return caption.strip()
    raise FusekitError(f"{path} has no caption of the visible image (role b)", "describe the pair with --backend blip2")


@command("semantics", help=HELP)
def run(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Infrared A and visible B, or two folders matched by file name.", show_default=False)] = None,
    task: Task = "ivf",
    output: Annotated[str, typer.Option("--output", "-o", help="Output semantics file; a folder for many pairs.")] = "",
    caption: Annotated[Optional[str], typer.Option("--caption", help="The visible image's caption T (one pair).")] = None,
    descriptions: Annotated[Optional[str], typer.Option("--descriptions", "-d", help="Descriptions JSON of the pair (- = stdin); a folder of <name>.json for many pairs.")] = None,
    captioner: Annotated[str, typer.Option("--captioner", help="describe backend that captions the visible image when no caption is given.")] = "blip2",
    captioner_model: Annotated[Optional[str], typer.Option("--captioner-model", help="Local folder or Hugging Face id of the captioner's weights.")] = None,
    mask: Annotated[list[str], typer.Option("--mask", help="Mask image of the pair (non-zero = object); repeat to unite several. Skips the diffusion step.")] = [],  # noqa: B006
    diffusion_model: Annotated[str, typer.Option("--diffusion-model", help="Stable Diffusion weights: Hugging Face id or local diffusers folder.")] = "",
    keywords: Annotated[Optional[str], typer.Option("--keywords", help="Comma-separated key-object words V* [default: person, car, bike, ... synonyms].")] = None,
    resolution: Annotated[int, typer.Option("--resolution", help="Square size the image is resized to for the diffusion model.")] = 512,
    strength: Annotated[float, typer.Option("--strength", help="Noise level as a fraction of the diffusion timesteps.")] = 0.5,
    samples: Annotated[int, typer.Option("--samples", help="Noise draws averaged per mask.")] = 10,
    threshold: Annotated[float, typer.Option("--threshold", help="Binarisation threshold of the normalised noise difference.")] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the noise draws.")] = 0,
    manifest: Manifest = None,
    device: Device = "auto",
    precision: Precision = "fp32",
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    summary: Summary = None,
) -> int:
    from ..devices import resolve_device, resolve_precision
    from ..io.atomic import check_not_input, check_output_folder
    from ..guidance.semantics import (DEFAULT_DIFFUSION_MODEL, DiffusionSemantics, SIGConfig, generate_semantics,
                                         write_semantics)

    if check_task(task) != "ivf":
        raise UsageError("TeSG's semantic information generator is for infrared-visible pairs", "use --task ivf")
    if not output:
        raise UsageError("--output is required", "add -o pair.safetensors (or -o DIR for many pairs)")
    try:
        config = SIGConfig(resolution=resolution, strength=strength, samples=samples, threshold=threshold, seed=seed,
                           **({"keywords": tuple(w.strip() for w in keywords.split(",") if w.strip())} if keywords else {}))
    except ValueError as exc:
        raise UsageError(str(exc), "see fusekit semantics --help") from exc
    work = work_for(paths, manifest, shard)
    batch, items = work.many, work.items
    if batch and (caption or mask):
        raise UsageError("--caption and --mask are for one pair", "give them per pair in a --manifest (caption, mask)")
    if batch:
        check_output_folder(output, "pairs")
    for item in items:
        check_not_input(output, item.paths.values())
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    state: dict = {}

    def diffusion(masks: bool) -> DiffusionSemantics:
        """The generator, loaded once: with the UNet when some pair needs a diffusion mask, else the text encoder."""
        loaded = state.get("diffusion")
        if loaded is None or (masks and not loaded.makes_masks):
            state["diffusion"] = DiffusionSemantics.from_pretrained(diffusion_model or DEFAULT_DIFFUSION_MODEL, config,
                                                                    torch_device, dtype, masks=masks)
        return state["diffusion"]

    def caption_of(item) -> str:
        given = item.fields.get("caption") or caption
        if given:
            return str(given)
        if descriptions:
            source = str(Path(descriptions) / f"{item.name}.json") if os.path.isdir(descriptions) else descriptions
            return _caption_from_descriptions(source)
        from ..guidance.describe import DESCRIBERS, DescribeOptions, Pipeline

        if "captioner" not in state:
            name = DESCRIBERS.canonical(captioner)
            options = DescribeOptions(device=device, precision=precision,
                                      model_paths={name: captioner_model} if captioner_model and os.path.isdir(captioner_model) else {},
                                      model_ids={name: captioner_model} if captioner_model and not os.path.isdir(captioner_model) else {})
            state["captioner"] = Pipeline([name], options)
        document = state["captioner"].describe([item.b], task)
        return str(document["images"][0]["texts"].get("caption", "")).strip()

    def target(item) -> str:
        return pair_output(item, output, ".safetensors") if batch else output

    def process(item, _=None) -> None:
        masks = [item.fields["mask"]] if item.fields.get("mask") else mask
        tensors, metadata = generate_semantics(item.a, item.b, caption_of(item), diffusion(not masks), masks or None)
        write_semantics(target(item), tensors, metadata)

    if not batch:
        if not items:
            raise UsageError("give the infrared and the visible image", "fusekit semantics IR VI --task ivf -o FILE")
        process(items[0])
        return 0
    return run_work(work, process, summary=summary, outputs=lambda item: [target(item)], skip_existing=skip_existing)
