#!/usr/bin/env python3
"""Merge metrics JSON files (per pair from the example Makefile, per shard from a SLURM array) into one.

    python tools/merge_metrics.py out/metrics/*.json -o out/metrics.json
    python tools/merge_metrics.py out/metrics/ -o out/metrics.json      # every *.json in the folder

Why a separate step: each job of a batch writes the metrics of its own pairs, and only the last step sees them
all. The rows are put back in name order (the order `fusekit metrics` uses over folders and manifests) and the
means are recomputed over all rows the same way `fusekit metrics` computes them, so the merged file matches what
one `fusekit metrics` run over the whole dataset reports. All inputs must share the convention and the list of
metrics; a pair that appears in two inputs is an error (shards are disjoint, so it means inputs were mixed up).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fusekit import log  # noqa: E402
from fusekit.errors import FusekitError  # noqa: E402
from fusekit.io.formats import new_metrics_document, read_metrics_document, write_json  # noqa: E402
from fusekit.metrics.output import column_means  # noqa: E402


def row_name(row: dict) -> str:
    """A row's pair name: its ``name`` when it has one, else the file stem of the fused image."""
    return str(row.get("name") or Path(str(row.get("fused", ""))).stem)


def merge(paths: list[Path]) -> dict:
    documents = [(path, read_metrics_document(path)) for path in paths]
    if not documents:
        raise FusekitError("no metrics files to merge", "give metrics JSON files or a folder holding them")
    first_path, first = documents[0]
    rows, seen = [], {}
    for path, document in documents:
        for key in ("convention", "metrics"):
            if document.get(key) != first.get(key):
                raise FusekitError(
                    f"{path} has {key} {document.get(key)!r} but {first_path} has {first.get(key)!r}",
                    "merge only files made with the same fusekit metrics options",
                )
        for row in document.get("rows", []):
            name = row_name(row)
            if name in seen:
                raise FusekitError(f"pair {name!r} is in both {seen[name]} and {path}", "merge each shard's file once")
            seen[name] = path
            rows.append(row)
    rows.sort(key=row_name)
    merged = new_metrics_document(first["convention"], first["metrics"], rows, column_means(rows, first["metrics"]))
    if "better" in first:
        merged["better"] = first["better"]
    if any("failed" in document for _, document in documents):
        failed = [entry for _, document in documents for entry in document.get("failed", [])]
        merged["failed"] = sorted(failed, key=lambda entry: str(entry.get("name", "")))
    return merged


def expand(arguments: list[str]) -> list[Path]:
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        paths.extend(sorted(p for p in path.glob("*.json") if not p.name.startswith(".")) if path.is_dir() else [path])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="metrics JSON files, or folders of them")
    parser.add_argument("-o", "--output", default="-", help="merged metrics JSON (- = stdout, the default)")
    args = parser.parse_args(argv)
    log.configure("merge-metrics")
    try:
        inputs = expand(args.inputs)
        if args.output != "-":  # a folder input may hold an earlier merged file: never read it back in
            inputs = [path for path in inputs if path.resolve() != Path(args.output).resolve()]
        write_json(args.output, merge(inputs))
    except FusekitError as error:
        log.error(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
