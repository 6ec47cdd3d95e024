"""The versioned files that fusekit's tools hand each other (the public contract: docs/FORMATS.md).

Every file names its kind and version in a schema string, ``fusekit.<kind>/<major>.<minor>``: JSON files in a
top-level ``schema`` key, safetensors files in the ``schema`` metadata entry. Readers accept any minor version of
a major they know, and refuse another kind or a newer major with a message that says what the file is.

Kinds: ``descriptions`` (JSON), ``text-features``, ``image-features``, ``checkpoint`` (safetensors) and
``metrics`` (JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from typing import Any

from ..version import __version__
from ..errors import FusekitError
from .atomic import is_stdio, read_bytes, write_bytes

FORMAT_VERSIONS = {
    "descriptions": (1, 1),  # 1.1: optional top-level "prompt"
    "text-features": (1, 0),
    "image-features": (1, 0),
    "checkpoint": (1, 0),
    "metrics": (1, 0),
    "semantics": (1, 0),
}
KIND_WORDS = {
    "descriptions": "descriptions JSON",
    "text-features": "text-features file",
    "image-features": "image-features file",
    "checkpoint": "checkpoint",
    "metrics": "metrics JSON",
    "semantics": "semantics file",
}
# The command that writes each kind, for "run this instead" hints.
WRITTEN_BY = {
    "descriptions": "fusekit describe",
    "text-features": "fusekit encode-text",
    "image-features": "fusekit encode-image",
    "checkpoint": "fusekit train or fusekit models import",
    "metrics": "fusekit metrics --json",
    "semantics": "fusekit semantics",
}


def schema_string(kind: str) -> str:
    major, minor = FORMAT_VERSIONS[kind]
    return f"fusekit.{kind}/{major}.{minor}"


def check_schema(schema: Any, kind: str, source: str) -> None:
    """Raise a user error unless `schema` names `kind` at a major version this fusekit reads."""
    expected = KIND_WORDS[kind]
    if not isinstance(schema, str) or not schema.startswith("fusekit.") or "/" not in schema:
        raise FusekitError(f"{source} is not a fusekit {expected}", f"make one with {WRITTEN_BY[kind]}")
    found_kind, _, version = schema[len("fusekit."):].partition("/")
    if found_kind != kind:
        found = KIND_WORDS.get(found_kind, found_kind)
        raise FusekitError(f"{source} is a fusekit {found}, not a {expected}", f"make one with {WRITTEN_BY[kind]}")
    try:
        major = int(version.split(".")[0])
    except ValueError as exc:
        raise FusekitError(f"{source}: unreadable format version {version!r}", "the file is damaged") from exc
    if major > FORMAT_VERSIONS[kind][0]:
        raise FusekitError(
            f"{source} is a {expected} of format {version}, newer than this fusekit reads ({schema_string(kind)})",
            "upgrade fusekit",
        )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Content hash used to tie features and descriptions back to the images they came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- JSON documents


def _load_json(path: str | os.PathLike, kind: str) -> dict:
    source = "stdin" if is_stdio(path) else str(path)
    data = read_bytes(path, KIND_WORDS[kind])
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FusekitError(f"{source} is not valid JSON ({exc})", f"expected a {KIND_WORDS[kind]} from {WRITTEN_BY[kind]}") from exc
    if not isinstance(document, dict):
        raise FusekitError(f"{source} is not a fusekit {KIND_WORDS[kind]}", f"make one with {WRITTEN_BY[kind]}")
    check_schema(document.get("schema"), kind, source)
    return document


def dump_json(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, document: dict) -> None:
    write_bytes(path, dump_json(document).encode("utf-8"))


TASKS = ("ivf", "mif", "mef", "mff")
ROLES = ("a", "b")
TEXT_LEVELS = ("detail", "structure", "semantic")


def new_descriptions(task: str, backends: list[str], models: dict[str, str], images: list[dict]) -> dict:
    """A descriptions document. Each image: ``path``, ``sha256``, ``role`` (a/b) and ``texts``.

    ``texts`` may hold ``caption`` (str), ``regions`` ([{box: [x0, y0, x1, y1], caption}]), ``segments``
    ([{box, area, mean_intensity}]), ``paragraph`` (str) and ``levels`` ({detail, structure, semantic}).
    """
    document = {
        "schema": schema_string("descriptions"),
        "fusekit_version": __version__,
        "task": task,
        "backends": list(backends),
        "models": dict(models),
        "images": images,
    }
    validate_descriptions(document, "descriptions")
    return document


def validate_descriptions(document: dict, source: str) -> None:
    check_schema(document.get("schema"), "descriptions", source)
    if not _finite(document):  # Python's json reads NaN/Infinity, which JSON has not (and writing them back fails)
        raise FusekitError(f"{source} holds NaN or Infinity, which are not JSON", "re-run fusekit describe")
    if document.get("task") not in TASKS:
        raise FusekitError(f"{source}: task must be one of {', '.join(TASKS)}", "re-run fusekit describe with --task")
    if "prompt" in document and not isinstance(document["prompt"], str):
        raise FusekitError(f"{source}: prompt must be text", "write it as a JSON string, or drop it")
    images = document.get("images")
    if not isinstance(images, list) or not images:
        raise FusekitError(f"{source}: no images described", "re-run fusekit describe")
    for index, image in enumerate(images):
        where = f"{source}: images[{index}]"
        if not isinstance(image, dict):
            raise FusekitError(f"{where} is not an object", "re-run fusekit describe")
        for key in ("path", "sha256", "role", "texts"):
            if key not in image:
                raise FusekitError(f"{where} lacks {key!r}", "re-run fusekit describe")
        if image["role"] not in ROLES:
            raise FusekitError(f"{where}: role must be 'a' or 'b', not {image['role']!r}", "re-run fusekit describe")
        texts = image["texts"]
        if not isinstance(texts, dict):
            raise FusekitError(f"{where}: texts is not an object", "re-run fusekit describe")
        levels = texts.get("levels")
        if levels is not None and (not isinstance(levels, dict) or set(levels) - set(TEXT_LEVELS)):
            raise FusekitError(f"{where}: levels must map {', '.join(TEXT_LEVELS)} to text", "re-run fusekit describe")


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True


def read_descriptions(path: str | os.PathLike) -> dict:
    document = _load_json(path, "descriptions")
    validate_descriptions(document, "stdin" if is_stdio(path) else str(path))
    return document


def new_metrics_document(convention: str, metrics: list[str], rows: list[dict], mean: dict) -> dict:
    """Metrics JSON: per-triple ``rows`` (``fused``, ``a``, ``b`` and one key per metric; NaN → null), ``mean``."""
    return {
        "schema": schema_string("metrics"),
        "version": __version__,
        "convention": convention,
        "metrics": list(metrics),
        "rows": rows,
        "mean": mean,
    }


def read_metrics_document(path: str | os.PathLike) -> dict:
    return _load_json(path, "metrics")


# ----------------------------------------------------------------------------------------- safetensors files


def parse_safetensors(data: bytes, damaged: FusekitError) -> tuple[dict, dict]:
    """Tensors and string metadata of a safetensors blob; `damaged` is raised when it is not one or is truncated."""
    import safetensors.torch

    if len(data) < 8:
        raise damaged
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > len(data) - 8:
        raise damaged
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own error types for damaged payloads
        raise damaged from exc
    return tensors, dict(header.get("__metadata__") or {})


def read_safetensors(path: str | os.PathLike, kind: str) -> tuple[dict, dict]:
    """(tensors, metadata) of a fusekit safetensors file of `kind`, schema checked."""
    source = "stdin" if is_stdio(path) else str(path)
    damaged = FusekitError(f"{source} is not a safetensors file or is truncated", f"expected a {KIND_WORDS[kind]} from {WRITTEN_BY[kind]}")
    tensors, metadata = parse_safetensors(read_bytes(path, KIND_WORDS[kind]), damaged)
    check_schema(metadata.get("schema"), kind, source)
    return tensors, metadata


def write_safetensors(path: str | os.PathLike, kind: str, tensors: dict, metadata: dict[str, Any]) -> None:
    """Write tensors + metadata atomically; non-string metadata values are stored as JSON. The tensors are torch
    tensors or numpy arrays (all numpy: torch is not imported; the bytes are the same either way)."""
    meta = {"schema": schema_string(kind), "fusekit_version": __version__}
    for key, value in metadata.items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if all(type(tensor).__module__ == "numpy" for tensor in tensors.values()):
        import numpy as np
        import safetensors.numpy

        blob = safetensors.numpy.save({name: np.ascontiguousarray(array) for name, array in tensors.items()}, metadata=meta)
    else:
        import safetensors.torch

        contiguous = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
        blob = safetensors.torch.save(contiguous, metadata=meta)
    write_bytes(path, _stable_header(blob))


def _stable_header(data: bytes) -> bytes:
    """The same blob with its metadata keys sorted: safetensors writes them in hash order, so the same tensors
    and metadata would otherwise give different bytes on every run."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size].decode("utf-8"))
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + size :]


def read_text_features(path: str | os.PathLike) -> tuple[dict, dict]:
    """Text features: ``text`` [L, D] for the pair (plus optional per-image / per-level tensors) and metadata
    (``encoder``, ``dim``, ``task``, ``image_sha256_a``/``_b``, ``descriptions_sha256``)."""
    tensors, metadata = read_safetensors(path, "text-features")
    source = "stdin" if is_stdio(path) else str(path)
    if "text" not in tensors or tensors["text"].ndim != 2:
        raise FusekitError(f"{source}: no 'text' tensor of shape [tokens, dim]", "re-run fusekit encode-text")
    return tensors, metadata


def read_vlf_text_features(path: str | os.PathLike) -> tuple[dict, dict]:
    """Text features of the VLF dataset (FILM's release, ``TextFeature/<task>/<dataset>/<name>.npy``): one float
    array [1, L, 768] of BLIP-2 Q-Former token states per pair, returned like `read_text_features`."""
    import numpy as np
    import torch

    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # a damaged header fails as OSError, ValueError, EOFError, SyntaxError, TokenError, ...
        raise FusekitError(f"{path} is not a readable .npy array", "expected VLF text features [1, L, 768]") from exc
    if not isinstance(array, np.ndarray):  # an .npz archive of several arrays
        raise FusekitError(f"{path} is an .npz archive, not one .npy array", "expected VLF text features [1, L, 768]")
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise FusekitError(f"{path}: text features must be a float array [1, L, D] or [L, D], not {list(array.shape)}", "use the VLF TextFeature .npy files")
    return {"text": torch.from_numpy(array.astype(np.float32))}, {"encoder": "blip2", "dim": str(array.shape[1]), "source": "VLF .npy"}


def read_image_features(path: str | os.PathLike) -> tuple[dict, dict]:
    """Image features: ``embed_a`` / ``embed_b`` ([D] each, or one ``embed`` per single image) and metadata."""
    return read_safetensors(path, "image-features")


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """Checkpoint weights and metadata (``model``, ``config`` JSON, ``task``, expected features, provenance)."""
    return read_safetensors(path, "checkpoint")
