"""Atomic output: write to a temporary file beside the target, then rename.

A killed job (SIGKILL included) therefore never leaves a half-written file under a final name; at worst a
``.fusekit-tmp-*`` file is left behind, which `--skip-existing` ignores. Inputs are never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import FusekitError, UsageError

TEMP_PREFIX = ".fusekit-tmp-"
# Endings of the files fusekit reads and writes: a many-item output ending so is a file name, not a folder to make.
FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".json", ".jsonl", ".csv", ".tsv", ".txt",
                 ".safetensors", ".npy", ".pt", ".pth")


def is_stdio(path: str | os.PathLike | None) -> bool:
    return str(path) == "-"


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse to write `output` when it is one of `inputs` (same file after resolving links)."""
    if is_stdio(output):
        return
    out = Path(output)
    for source in inputs:
        if is_stdio(source):
            continue
        src = Path(source)
        same = out.exists() and src.exists() and os.path.samefile(out, src)
        if same or out.resolve() == src.resolve():
            raise FusekitError(f"output {output} is also an input", "choose another output path; inputs are never overwritten")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary stream whose bytes appear at `path` only if the block finishes without an exception.

    `path` of ``-`` writes to stdout (streamed, since a pipe cannot be renamed into).
    """
    if is_stdio(path):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FusekitError(f"cannot create output folder {directory}: {exc.strerror}", "check the path and permissions") from exc
    try:
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=target.suffix, dir=directory)
    except OSError as exc:
        raise FusekitError(f"cannot write to {directory}: {exc.strerror}", "check the path and permissions") from exc
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def read_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """Read a whole input (``-`` is stdin), turning OS errors into one-line user errors."""
    if is_stdio(path):
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise FusekitError(f"{what} not found: {path}", "check the path") from exc
    except IsADirectoryError as exc:
        raise FusekitError(f"{what} {path} is a folder, not a file", "give a file path") from exc
    except OSError as exc:
        raise FusekitError(f"cannot read {what} {path}: {exc.strerror}", "check the path and permissions") from exc


def into_folder(output: str | os.PathLike, name: str, suffix: str) -> str:
    """`output`, or ``output/<name><suffix>`` when `output` is an existing folder (``-o DIR`` for one item)."""
    if not is_stdio(output) and Path(output).is_dir():
        return str(Path(output) / f"{name}{suffix}")
    return str(output)


def check_output_folder(output: str | os.PathLike, items: str, hint: str = "give -o a folder") -> None:
    """Refuse a file-like output (``-o out.png``, an existing file) where many `items` need a folder.

    Checked before any work, so no folder named like a file is ever created."""
    path = Path(output)
    if path.is_dir():
        return
    if path.exists():
        raise UsageError(f"output {output} is a file, but several {items} need a folder", hint)
    if path.suffix.lower() in FILE_SUFFIXES:
        raise UsageError(f"output {output} looks like a file name, but several {items} need a folder", hint)
