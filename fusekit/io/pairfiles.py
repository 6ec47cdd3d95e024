"""Per-pair guidance files (text features, image features, semantics) found for a pair of images.

`fuse` and `train` both take "a file, or a folder of per-pair files": a file serves every pair; in a folder tree a
pair's file is ``<name>.safetensors`` (or ``.npy`` for VLF text features, also ``<sub/folder/name>``), else the file
whose metadata records the pair's two image hashes — so renamed features still find their images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import FusekitError, UsageError
from .formats import sha256_file


class PairFiles:
    """One file for every pair, or an index of a folder tree of per-pair files with the given suffixes."""

    def __init__(self, root: str | Path, suffixes: tuple[str, ...] = (".safetensors", ".npy")):
        self.root = Path(root)
        self.by_name: dict[str, Path] = {}
        self._by_hashes: dict[tuple[str, str], Path] | None = None
        if self.root.is_file():
            self.single: Path | None = self.root
            return
        if not self.root.is_dir():
            raise FusekitError(f"guidance path not found: {root}", "give one file, or a folder of per-pair files")
        self.single = None
        for path in sorted(self.root.rglob("*")):
            if path.suffix in suffixes and path.is_file() and not path.name.startswith("."):
                self.by_name.setdefault(path.relative_to(self.root).with_suffix("").as_posix(), path)
                self.by_name.setdefault(path.stem, path)

    def find(self, name: str, hashes: Callable[[], tuple[str, str]]) -> tuple[Path, bool] | None:
        """(file for pair `name`, whether it was matched by image hashes), or None. `hashes` is only called (the
        images hashed) when the name does not match."""
        if self.single is not None:
            return self.single, False
        for key in (name, name.rsplit("/", 1)[-1]):
            if key in self.by_name:
                return self.by_name[key], False
        found = self._hash_index().get(hashes())
        return (found, True) if found else None

    def _hash_index(self) -> dict[tuple[str, str], Path]:
        if self._by_hashes is None:
            from safetensors import safe_open

            self._by_hashes = {}
            for path in sorted(set(self.by_name.values())):
                if path.suffix != ".safetensors":
                    continue
                try:
                    with safe_open(str(path), "np") as handle:
                        meta = handle.metadata() or {}
                except Exception:  # not a safetensors file: skipped here, reported if it is ever matched by name
                    continue
                if meta.get("image_sha256_a") and meta.get("image_sha256_b"):
                    self._by_hashes.setdefault((meta["image_sha256_a"], meta["image_sha256_b"]), path)
        return self._by_hashes


class FileHashes:
    """The SHA-256 of each file, computed at most once per command: guidance is matched, checked and cached by
    image hashes, and the training data is recorded by them, so one run asks for the same hash several times."""

    def __init__(self):
        self._known: dict[str, str] = {}

    def __call__(self, path: str | Path) -> str:
        key = str(path)
        if key == "-":
            raise UsageError("an image read from stdin (-) has no file to hash, and guidance is matched and cached by image hashes",
                             "give the image's file path")
        if key not in self._known:
            self._known[key] = sha256_file(key)
        return self._known[key]

    def pair(self, a: str | Path, b: str | Path) -> tuple[str, str]:
        return self(a), self(b)
