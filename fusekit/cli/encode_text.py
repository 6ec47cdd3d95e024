"""`fusekit encode-text`: descriptions JSON → text-features safetensors (one pair, or one file per pair)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import FusekitError, UsageError
from ..guidance.text.base import TEXT_ENCODERS
from . import command
from .batching import pair_output, run_work, work_for
from .listing import LIST_HELP, known, print_listing, summaries
from .options import Device, Precision, Shard, SkipExisting, Summary

HELP = """Encode descriptions into text features for text-guided fusion models.

Reads descriptions JSON from `fusekit describe` (stdin by default) and writes a text-features safetensors file (docs/FORMATS.md): `text` [tokens, dim] = image A's tokens followed by image B's (FILM's concatenation), `text_a`, `text_b`, and MTIF's `text_detail`, `text_structure`, `text_semantic` when the descriptions have levels.

Encoders (offline is the default; `--list` shows them all, with those of installed plugins): {encoders}. A folder of another model type than the encoder expects is refused. Weights come from the Hugging Face cache or --model-path.

Many pairs: give a folder of descriptions JSON files or a .jsonl file, and -o DIR; each pair is written to DIR/<name>.safetensors, the name `fuse --text DIR` looks for.
""".format(encoders=summaries(TEXT_ENCODERS))


def _load_documents(source: str) -> tuple[list[tuple[str, dict]], bool]:
    """[(name, document)] from a JSON file, a JSON Lines file / stdin, or a folder; and whether it is a batch."""
    from ..io.atomic import read_bytes

    if source != "-" and os.path.isdir(source):
        files = sorted(path for path in Path(source).glob("*.json") if not path.name.startswith("."))  # not a killed write's temp file
        if not files:
            raise FusekitError(f"no .json files in {source}", "write them with fusekit describe A_DIR B_DIR -o DIR")
        return [(str(path), _parse_or_error(path.read_bytes(), str(path))) for path in files], True
    where = "stdin" if source == "-" else source
    if source == "-" and sys.stdin.isatty():
        raise UsageError("no descriptions on stdin", "pipe them in (fusekit describe A B --task T | fusekit encode-text -o F) or give a file")
    data = read_bytes(source, "descriptions JSON")
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise FusekitError(f"{where} is empty", "expected descriptions JSON from fusekit describe")
    try:
        return [(where, json.loads(text))], False
    except json.JSONDecodeError as whole_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise FusekitError(f"{where} is not valid JSON ({whole_error})", "expected descriptions JSON from fusekit describe") from whole_error
        return [(f"{where} line {n}", _parse_or_error(line.encode("utf-8"), f"{where} line {n}")) for n, line in enumerate(lines, 1)], True


def _parse(data: bytes, where: str) -> dict:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FusekitError(f"{where} is not valid JSON ({exc})", "expected descriptions JSON from fusekit describe") from exc


def _parse_or_error(data: bytes, where: str) -> dict | FusekitError:
    """In a batch a damaged file is one failed item (reported, the rest go on), not the end of the run."""
    try:
        return _parse(data, where)
    except FusekitError as exc:
        return exc


def _name(document: dict, where: str) -> str:
    if isinstance(document, dict) and document.get("name"):
        return str(document["name"])
    images = document.get("images") if isinstance(document, dict) else None
    if isinstance(images, list) and images and isinstance(images[0], dict) and images[0].get("path"):
        return Path(str(images[0]["path"])).stem
    return Path(where).stem


@command("encode-text", help=HELP)
def run(
    source: Annotated[str, typer.Argument(help="Descriptions JSON (- = stdin), a .jsonl file or a folder of .json files.")] = "-",
    output: Annotated[str, typer.Option("--output", "-o", help="Text-features file (- = stdout); a folder for many pairs.")] = "-",
    encoder: Annotated[str, typer.Option("--encoder", "-e", help=f"Text encoder: {known(TEXT_ENCODERS)}.")] = "offline",
    model_path: Annotated[Optional[str], typer.Option("--model-path", help="Local folder of the encoder's weights and tokenizer.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Hugging Face model id of the encoder [default: per encoder].")] = None,
    dim: Annotated[int, typer.Option("--dim", help="Width of the offline encoder's features.")] = 768,
    projected: Annotated[bool, typer.Option("--projected", help="blip2: the 256-d projected token states instead of the 768-d ones.")] = False,
    pooled: Annotated[bool, typer.Option("--pooled", help="hf: one mean-pooled row per text (a sentence embedding) instead of the token states.")] = False,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="At most this many tokens per text (longer texts are cut).")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Model encoders: this many texts per forward pass, padded to the longest and masked (the features do not change; faster on a GPU); a batch fills them with the texts of this many pairs at a time.")] = 1,
    device: Device = "auto",
    precision: Precision = "fp32",
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    summary: Summary = None,
    list_encoders: Annotated[bool, typer.Option("--list", help=LIST_HELP.format(what="text encoders"))] = False,
) -> int:
    if list_encoders:
        print_listing(TEXT_ENCODERS)
        return 0
    from ..io.atomic import check_not_input, into_folder, is_stdio
    from ..io.formats import write_safetensors
    from ..io.pairs import Item
    from ..guidance.text import TextOptions, encode_descriptions, encode_many, get_encoder

    if dim < 8:
        raise UsageError(f"--dim {dim} is too small", "use at least 8 (768 matches FILM-shaped models)")
    if max_tokens < 2:
        raise UsageError(f"--max-tokens {max_tokens} is too small", "use at least 2")
    text_encoder = get_encoder(encoder, TextOptions(device=device, precision=precision, model_path=model_path, model_id=model,
                                                    dim=dim, projected=projected, pooled=pooled, max_tokens=max_tokens,
                                                    batch_size=batch_size))
    documents, batch = _load_documents(source)
    if not batch:
        where, document = documents[0]
        if is_stdio(output) and sys.stdout.isatty():
            raise UsageError("refusing to write binary features to a terminal", "give -o FILE.safetensors")
        check_not_input(output, [source])
        tensors, metadata = encode_descriptions(document, text_encoder, source=where, as_numpy=True)
        write_safetensors(into_folder(output, _name(document, where), ".safetensors"), "text-features", tensors, metadata)
        return 0
    if is_stdio(output) or output.endswith(".safetensors"):
        raise UsageError("many descriptions need an output folder", "give -o DIR (one DIR/<name>.safetensors per pair)")
    items = [Item(_name(document, where), {}, {"document": document, "where": where}) for where, document in documents]
    names = [item.name for item in items]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FusekitError(f"pair name {duplicates[0]!r} appears twice in {source}", "give each pair a unique name (fusekit describe sets it)")
    work = work_for(None, None, shard, items=items)

    def target(item: Item) -> str:
        return pair_output(item, output, ".safetensors")

    def process(item: Item, _):
        return process_batch([item], [None])[0]

    def process_batch(group: list[Item], _) -> list:  # --batch-size N: N pairs' texts in one encoder call
        for item in group:
            if isinstance(item.fields["document"], FusekitError):
                raise item.fields["document"]
        return encode_many([(item.fields["document"], item.fields["where"]) for item in group], text_encoder, as_numpy=True)

    def write(item: Item, encoded) -> None:  # in a background thread while the encoder works on the next pair
        write_safetensors(target(item), "text-features", *encoded)

    return run_work(work, process, summary=summary, outputs=lambda item: [target(item)], skip_existing=skip_existing, write=write,
                    process_batch=process_batch, batch_size=batch_size)
