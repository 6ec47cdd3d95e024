"""`fusekit encode-image`: images → image-features safetensors (CLIP embeddings, MGFusion's guidance)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..guidance.vision.base import IMAGE_ENCODERS
from . import command
from .batching import pair_output, run_work, work_for
from .listing import LIST_HELP, known, print_listing, summaries
from .options import Device, Manifest, Precision, Shard, SkipExisting, Summary

HELP = """Encode images with a frozen image encoder, for image-guided fusion models (MGFusion).

Writes an image-features safetensors file (docs/FORMATS.md) with `image_embed_a` and `image_embed_b` [dim], the embeddings of A and B. Encoders (`--list` shows them all, with those of installed plugins): {encoders}; --model or --model-path choose other weights. Two folders or --manifest: -o DIR gets one DIR/<name>.safetensors per pair, the name `fuse --image-features DIR` looks for.
""".format(encoders=summaries(IMAGE_ENCODERS))


@command("encode-image", help=HELP)
def run(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Image A (and B), or two folders matched by file name.", show_default=False)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Image-features file (- = stdout); a folder for many pairs.")] = "-",
    encoder: Annotated[str, typer.Option("--encoder", "-e", help=f"Image encoder: {known(IMAGE_ENCODERS)}.")] = "clip",
    model_path: Annotated[Optional[str], typer.Option("--model-path", help="Local folder of the encoder's weights.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Hugging Face model id [default: the encoder's, see --list].")] = None,
    manifest: Manifest = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pairs whose images go through the encoder in one forward pass (the embeddings do not change; faster on a GPU).")] = 1,
    device: Device = "auto",
    precision: Precision = "fp32",
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    summary: Summary = None,
    list_encoders: Annotated[bool, typer.Option("--list", help=LIST_HELP.format(what="image encoders"))] = False,
) -> int:
    if list_encoders:
        print_listing(IMAGE_ENCODERS)
        return 0
    from ..io.atomic import check_not_input, into_folder, is_stdio
    from ..io.formats import write_safetensors
    from ..io.pairs import Item
    from ..guidance.vision import ImageOptions, get_image_encoder, image_features, image_features_many

    paths = paths or []
    image_encoder = get_image_encoder(encoder, ImageOptions(device=device, precision=precision, model_path=model_path, model_id=model))
    batch = bool(manifest) or any(os.path.isdir(path) for path in paths)
    if not batch:
        if not 1 <= len(paths) <= 2:
            raise UsageError(f"expected one or two images, got {len(paths)}", "give A B, two folders or --manifest")
        if is_stdio(output) and sys.stdout.isatty():
            raise UsageError("refusing to write binary features to a terminal", "give -o FILE.safetensors")
        check_not_input(output, paths)
        tensors, metadata = image_features(paths, image_encoder)
        write_safetensors(into_folder(output, Path(paths[0]).stem, ".safetensors"), "image-features", tensors, metadata)
        return 0
    if is_stdio(output) or output.endswith(".safetensors"):
        raise UsageError("many pairs need an output folder", "give -o DIR (one DIR/<name>.safetensors per pair)")
    work = work_for(paths, manifest, shard)

    def target(item: Item) -> str:
        return pair_output(item, output, ".safetensors")

    def process(item: Item, _):
        return process_batch([item], [None])[0]

    def process_batch(group: list[Item], _) -> list:  # --batch-size N: N pairs' images in one forward pass
        return image_features_many([[item.a, item.b] for item in group], image_encoder)

    def write(item: Item, features) -> None:
        write_safetensors(target(item), "image-features", *features)

    return run_work(work, process, summary=summary, outputs=lambda item: [target(item)], skip_existing=skip_existing, write=write,
                    process_batch=process_batch, batch_size=batch_size)
