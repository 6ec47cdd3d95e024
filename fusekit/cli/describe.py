"""`fusekit describe`: images → descriptions JSON (one pair on stdout, or one file per pair for a batch)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..guidance.describe.base import DESCRIBERS
from . import command
from .batching import pair_output, run_work, work_for
from .listing import LIST_HELP, known, print_listing, summaries
from .options import Device, Manifest, Precision, Shard, SkipExisting, Summary, Task, require_task

HELP = """Describe images in words: the first stage of text-guided fusion (FILM, MTIF).

Writes descriptions JSON (docs/FORMATS.md) to stdout, ready for encode-text: `fusekit describe ir.png vi.png --task ivf | fusekit encode-text -o pair.safetensors`

The default backend, stats, needs no weights and is deterministic: exposure, contrast, focus, thermal hotspots and edge density measured from the pixels, written as a caption, a paragraph and MTIF's detail, structure and semantic levels.

To use vision-language models instead, choose backends with --backend (comma-separated, e.g. `--backend blip2,florence2,sam,llm`; `--list` shows them all, with those of installed plugins): {backends}. `--llm-vision` also sends the images to a multimodal endpoint; `--model-path llm=` takes a folder or a .gguf file. An unusable LLM reply (empty, repeating itself, copying the prompt) is replaced by the stats text with a warning.

Weights come from the Hugging Face cache or --model-path (BACKEND=DIR when several backends need weights). Two folders or --manifest describe many pairs: -o DIR writes DIR/<name>.json, -o FILE.jsonl (or stdout) one JSON line per pair.
""".format(backends=summaries(DESCRIBERS))


def _per_backend(values: list[str], what: str, backends: list[str]) -> dict[str, str]:
    """``BACKEND=VALUE`` entries, or one bare VALUE when exactly one chosen backend takes a model."""
    result: dict[str, str] = {}
    model_backends = [name for name in backends if name != "stats"]
    for value in values:
        key, sep, rest = value.partition("=")
        if sep and key.strip() and key.strip().lower() in DESCRIBERS:
            result[DESCRIBERS.canonical(key)] = rest
        elif len(model_backends) == 1:
            result[model_backends[0]] = value
        else:
            raise UsageError(f"{what} {value!r} does not say which backend it is for", f"write BACKEND=VALUE, e.g. blip2={value}")
    return result


def _warn_unused(names: list[str], options) -> None:
    """Options for a backend that was not chosen are almost always a forgotten --backend: say so."""
    from .. import log

    unused = sorted((set(options.model_paths) | set(options.model_ids)) - set(names))
    if options.llm_url and "llm" not in names:
        unused.append("llm (--llm-url)")
    if options.llm_vision and not options.llm_url:
        log.warn("--llm-vision needs a multimodal endpoint (--llm-url); a local model sees the images with --backend vlm")
    for name in unused:
        log.warn(f"options given for backend {name}, which is not chosen (add it with --backend)")


@command("describe", help=HELP)
def run(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Image A (and B), or two folders matched by file name.", show_default=False)] = None,
    task: Task = "",
    backend: Annotated[list[str], typer.Option("--backend", "-b", help=f"Backends, comma-separated or repeated: {known(DESCRIBERS)}.")] = ["stats"],  # noqa: B006
    output: Annotated[str, typer.Option("--output", "-o", help="Output file (- = stdout); for many pairs a folder (one JSON per pair) or a .jsonl file.")] = "-",
    manifest: Manifest = None,
    model_path: Annotated[list[str], typer.Option("--model-path", help="Local model folder, as DIR or BACKEND=DIR (repeatable).")] = [],  # noqa: B006
    model: Annotated[list[str], typer.Option("--model", help="Hugging Face model id, as ID or BACKEND=ID (repeatable).")] = [],  # noqa: B006
    llm_url: Annotated[Optional[str], typer.Option("--llm-url", help="OpenAI-compatible base URL (e.g. http://localhost:8000/v1); without it the llm backend runs a local transformers LM.")] = None,
    llm_model: Annotated[Optional[str], typer.Option("--llm-model", help="Model name sent to --llm-url (or the local LM's id).")] = None,
    llm_key_env: Annotated[str, typer.Option("--llm-key-env", help="Environment variable holding the endpoint's API key (sent only when set).")] = "OPENAI_API_KEY",
    llm_timeout: Annotated[float, typer.Option("--llm-timeout", help="Deadline in seconds for one whole endpoint request (a reply still arriving then is cut off and retried).")] = 60.0,
    llm_retries: Annotated[int, typer.Option("--llm-retries", help="Retries after a timeout, connection error or HTTP 5xx/429.")] = 2,
    llm_concurrency: Annotated[int, typer.Option("--llm-concurrency", min=1, help="Endpoint requests in flight at once, across pairs (output order and bytes do not change).")] = 1,
    llm_vision: Annotated[bool, typer.Option("--llm-vision", help="Send the images with the prompt (OpenAI image_url parts) to a multimodal endpoint: the image with its segment and region maps for the paragraph, both images of the pair for the levels.")] = False,
    llm_max_tokens: Annotated[int, typer.Option("--llm-max-tokens", min=8, help="At most this many tokens in the paragraph reply (and at most 80 per level for a local model).")] = 400,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="blip2, florence2, sam and a local llm: this many images (llm: prompts) per model call, across pairs (output bytes do not change; faster on a GPU). vlm still runs one prompt at a time.")] = 1,
    no_levels: Annotated[bool, typer.Option("--no-levels", help="llm: write only FILM's paragraph, not MTIF's three levels.")] = False,
    cache: Annotated[Optional[str], typer.Option("--cache", help="Cache folder for model outputs [default: $FUSEKIT_CACHE or ~/.cache/fusekit/describe].")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")] = False,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Your own words about the pair, e.g. 'the visible image is dark and noisy': stored as the descriptions' prompt and added to every image's text by encode-text.")] = None,
    device: Device = "auto",
    precision: Precision = "fp32",
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    summary: Summary = None,
    list_backends: Annotated[bool, typer.Option("--list", help=LIST_HELP.format(what="describer backends"))] = False,
) -> int:
    if list_backends:
        print_listing(DESCRIBERS)
        return 0
    from ..guidance.describe import DescribeOptions, Pipeline, backend_names, default_cache_dir
    from ..io.atomic import check_not_input, check_output_folder, into_folder, write_text
    from ..io.formats import write_json
    from ..io.pairs import Item

    task = require_task(task)
    names = backend_names(backend)
    options = DescribeOptions(
        device=device, precision=precision,
        model_paths=_per_backend(model_path, "--model-path", names),
        model_ids=_per_backend(model, "--model", names),
        llm_url=llm_url, llm_model=llm_model, llm_key_env=llm_key_env, llm_timeout=llm_timeout,
        llm_retries=max(0, llm_retries), llm_levels=not no_levels, llm_concurrency=llm_concurrency,
        batch_size=batch_size, llm_vision=llm_vision, llm_max_tokens=llm_max_tokens,
        cache_dir=None if no_cache else (cache or default_cache_dir()), prompt=prompt,
    )
    _warn_unused(names, options)
    paths = paths or []
    single = len(paths) == 1 and not manifest and not os.path.isdir(paths[0])
    work = work_for(paths, manifest, shard, items=[Item(Path(paths[0]).stem, {"a": paths[0]}, single=True)] if single else None)
    batch, items = work.many, work.items
    for item in items:
        check_not_input(output, item.paths.values())
    pipeline = Pipeline(names, options)

    def roles(item: Item) -> list[str]:
        return [item.paths[role] for role in ("a", "b") if role in item.paths]

    if not batch:
        document = pipeline.describe(roles(items[0]), task)
        write_json(into_folder(output, items[0].name, ".json"), document)
        return 0

    jsonl = output == "-" or output.endswith(".jsonl")
    if not jsonl:
        check_output_folder(output, "pairs", "give -o a folder, or -o NAME.jsonl for one JSON Lines file")
    lines: list[str] = []

    def target(item: Item) -> str:
        return pair_output(item, output, ".json")

    def load(item: Item):  # decoding and hashing run in background threads while the models describe
        return pipeline.load(roles(item), task)

    def emit(document: dict):
        if not jsonl:
            return document
        if output == "-":
            typer.echo(json.dumps(document, ensure_ascii=False, allow_nan=False))
        else:
            lines.append(json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n")
        return None

    def process(item: Item, images):
        return emit(pipeline.describe(roles(item), task, name=item.name, images=images))

    def process_batch(group: list[Item], images: list):  # --llm-concurrency / --batch-size N > 1: N pairs share requests / model calls
        return [emit(document) for document in pipeline.describe_many([(i.name, loaded) for i, loaded in zip(group, images)], task)]

    def write(item: Item, document) -> None:
        if document is not None:
            write_json(target(item), document)

    def write_lines(result) -> None:
        if jsonl and output != "-":
            write_text(output, "".join(lines))

    return run_work(work, process, summary=summary, before_report=write_lines, outputs=None if jsonl else (lambda item: [target(item)]),
                    skip_existing=skip_existing, load=load, write=write, process_batch=process_batch,
                    batch_size=max(batch_size, llm_concurrency if llm_url and "llm" in names else 1))
