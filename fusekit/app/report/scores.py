"""Per-pair metric values of each method, cached next to the report so a rerun (or another shard) reuses them.

``OUT/metrics/<convention>/<method>/<pair>.json`` holds the convention, the values, the fused file's hash and the seconds the
method took on the pair. A cached entry is reused only when its convention, metrics and fused image all still match,
so changing `--convention`, `--metrics` or a `--fused` folder recomputes exactly what changed. The values are
`fusekit.metrics.compute` on the images as `fusekit.io.images.read_image` decodes the files, which is what
`fusekit metrics` does, so a report's numbers are `fusekit metrics`' numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...io.formats import sha256_file, write_json
from ...io.pairs import Item


def cache_path(out: Path, method: str, item: Item, convention: str) -> Path:
    return out / "metrics" / convention / method / f"{item.name}.json"


def cached(out: Path, method: str, item: Item, convention: str, names: list[str], fused: Path) -> dict | None:
    path = cache_path(out, method, item, convention)
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if entry.get("convention") != convention or any(name not in entry.get("values", {}) for name in names):
        return None
    if not fused.is_file() or entry.get("fused_sha256") != sha256_file(fused):
        return None
    return entry


def measure(out: Path, method: str, item: Item, convention: str, names: list[str], fused: Path, seconds: float | None) -> dict:
    """Compute (or reuse) the pair's values and store them; `seconds` None keeps the time an earlier run measured."""
    previous = cached(out, method, item, convention, names, fused)
    if previous is not None and seconds is None:
        return previous
    from ...io.images import read_image
    from ...metrics import compute

    old_seconds = _old_seconds(out, method, item, fused)
    values = compute(read_image(fused), read_image(item.a), read_image(item.b), names, convention)
    entry = {
        "pair": item.name, "fused": str(fused), "fused_sha256": sha256_file(fused), "convention": convention,
        "values": {name: (value if math.isfinite(value) else None) for name, value in values.items()},
        "seconds": seconds if seconds is not None else old_seconds,
    }
    write_json(cache_path(out, method, item, convention), entry)
    return entry


def _old_seconds(out: Path, method: str, item: Item, fused: Path) -> float | None:
    """The seconds an earlier run (in any convention) stored for the same fused image."""
    digest = sha256_file(fused) if fused.is_file() else None
    for path in sorted((out / "metrics").glob(f"*/{method}/{item.name}.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if entry.get("fused_sha256") == digest and entry.get("seconds") is not None:
            return entry["seconds"]
    return None


def load_all(out: Path, method: str, items: list[Item], convention: str, names: list[str], fused_paths: dict[str, Path]) -> list[dict]:
    """The cached entries of `items` that are complete and current (pairs a failed or other shard left out are absent)."""
    entries = []
    for item in items:
        entry = cached(out, method, item, convention, names, fused_paths[item.name])
        if entry is not None:
            entries.append(entry)
    return entries
