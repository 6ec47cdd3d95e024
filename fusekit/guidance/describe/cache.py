"""A folder of cached backend outputs, keyed by image hash + backend + model id, so batch re-runs are cheap.

Entries are small JSON files written atomically; a damaged entry is ignored and rewritten. The default folder
is ``$FUSEKIT_CACHE`` or ``$XDG_CACHE_HOME/fusekit/describe`` (``~/.cache/fusekit/describe``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ... import log
from ...io.atomic import write_text


def default_cache_dir() -> str:
    if os.environ.get("FUSEKIT_CACHE"):
        return os.environ["FUSEKIT_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fusekit", "describe")


class DescribeCache:
    def __init__(self, folder: str):
        self.folder = Path(folder)

    def _path(self, backend: str, model_id: str, sha256: str, extra: str) -> Path:
        model = hashlib.sha256(model_id.encode("utf-8")).hexdigest()[:16]
        suffix = "-" + hashlib.sha256(extra.encode("utf-8")).hexdigest()[:16] if extra else ""
        return self.folder / backend / model / f"{sha256}{suffix}.json"

    def get(self, backend: str, model_id: str, sha256: str, extra: str = "") -> dict | None:
        path = self._path(backend, model_id, sha256, extra)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.debug(f"ignoring damaged cache entry {path}")
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, backend: str, model_id: str, sha256: str, texts: dict, extra: str = "") -> None:
        path = self._path(backend, model_id, sha256, extra)
        try:
            write_text(path, json.dumps(texts, ensure_ascii=False))  # key order kept: same bytes from cache as fresh
        except Exception as exc:  # a read-only cache must not fail the description
            log.warn(f"cannot write cache entry {path} ({exc})")
