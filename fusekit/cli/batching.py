"""What the batch forms of the per-pair commands (describe, encode-text, encode-image, semantics) share."""

from __future__ import annotations

from pathlib import Path


def pair_output(item, folder: str, suffix: str) -> str:
    """Where a batch writes one pair: the manifest's `out` field when it has one, else FOLDER/<pair name><suffix>.

    One rule for every command, so `fuse --text DIR` (and the other guidance options) find each pair's file by name.
    """
    return str(item.fields.get("out") or Path(folder) / f"{item.name}{suffix}")
