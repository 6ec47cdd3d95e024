"""`fusekit fuse`: run a fusion model on one pair, two folders of pairs or a manifest (docs/FUSE.md)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from . import command
from .batching import run_work, work_for
from .options import (Describer, Device, Encoder, EncoderModel, ImageEncoder, ImageEncoderModel, ImageFeatures, Manifest, Precision,
                      Semantics, Shard, SkipExisting, Summary, Task, Text, guidance_options, require_task)

HELP = """Fuse image pairs with a registered model (see `fusekit models`).

Inputs in the task's A/B order: ivf infrared visible; mif MRI other (CT/PET/SPECT); mef over-exposed under-exposed; mff a b. One pair writes -o FILE.png (- = stdout); two folders (matched by file name) or --manifest write -o DIR/<name>.png.

Learned models need weights (--weights: a fusekit checkpoint, or a released .pth such as FILM's) unless they ship bundled ones, and the guidance they were trained with: --text (text features from encode-text, or the VLF dataset's .npy files), --image-features, --semantics; each is a file, or a folder of per-pair files matched by pair name or by the image hashes in their metadata. Without them the recipe the weights were trained with is computed (weights from fusekit train record it; offline text, as the bundled weights use, needs no record); --describer/--encoder or --image-encoder compute guidance explicitly.

Colour: by default the fused luma gets the visible (ivf) or functional (mif) image's colour, or a blend of both sources' colour (mef, mff); --grey writes grey. --postprocess film reproduces the released FILM test script's bytes (min-max, x255, truncate).

Example: fusekit fuse ir.png vi.png --task ivf --model film --weights film_ivf.safetensors --text pair.safetensors -o fused.png
"""


@command("fuse", help=HELP)
def run(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Images A and B, or two folders matched by file name.", show_default=False)] = None,
    task: Task = "",
    model: Annotated[Optional[str], typer.Option("--model", "-M", help="Fusion model (default: the best fusekit has for the task on the DEV set: the bundled compact model where it beats the task's best training-free baseline, else that baseline; see docs/MODELS.md).", show_default=False)] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="Checkpoint: fusekit .safetensors or released .pth (default: the model's bundled weights).")] = None,
    text: Text = None,
    image_features: ImageFeatures = None,
    semantics: Semantics = None,
    describer: Describer = None,
    encoder: Encoder = None,
    encoder_model: EncoderModel = None,
    image_encoder: ImageEncoder = None,
    image_encoder_model: ImageEncoderModel = None,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Your own words about the pair, added to the text made on the fly, e.g. 'the visible image is dark and noisy' (a manifest line's prompt field wins).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output PNG for one pair (- = stdout), or output folder for many.")] = None,
    manifest: Manifest = None,
    colour: Annotated[Optional[bool], typer.Option("--colour/--grey", "--color/--gray", help="Colour output (re-attach chroma) or grey (default: colour when a source is colour).", show_default=False)] = None,
    postprocess: Annotated[str, typer.Option("--postprocess", help="clip: clip to [0, 1] and round; film: the released FILM script (min-max, x255, truncate).")] = "clip",
    device: Device = "auto",
    precision: Precision = "fp32",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Pairs of the same size fused together on the device.", min=1)] = 1,
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    summary: Summary = None,
) -> int:
    from ..io.atomic import check_not_input, check_output_folder
    from ..io.images import write_image
    from ..app import fuse as runner

    task = require_task(task)
    work = work_for(paths, manifest, shard)
    single = bool(paths) and not work.many
    items = work.items
    if output is None and not all(item.fields.get("out") for item in items):
        raise UsageError("no output given", "add -o FUSED.png for one pair, -o DIR for many")
    if not single and output == "-":
        raise UsageError("-o - (stdout) takes one pair only", "give an output folder")
    if not single and output:
        check_output_folder(output, "pairs")
    colour_mode = "auto" if colour is None else "colour" if colour else "grey"
    fuser = runner.Fuser(
        model, task, weights, device=device,
        guidance=guidance_options(text, image_features, semantics, describer, encoder, encoder_model, image_encoder, image_encoder_model),
        precision=precision, colour=colour_mode, postprocess=postprocess.strip().lower(), prompt=prompt,
    )
    fuser.check_guidance_given(items)

    def destination(item) -> str:
        return runner.output_path(item, output or "", single)

    def write(item, image) -> None:
        path = destination(item)
        check_not_input(path, [item.a, item.b])
        write_image(path, image)

    return run_work(
        work, lambda item, pair: fuser.fuse([pair])[0], summary=summary, outputs=lambda item: [destination(item)],
        skip_existing=skip_existing, load=fuser.load, write=write, process_batch=lambda items, pairs: fuser.fuse(pairs),
        batch_size=batch_size, batch_key=lambda pair: pair.batch_key,
    )
