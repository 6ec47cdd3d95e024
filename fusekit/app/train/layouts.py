"""Which pairs a training run uses: a manifest, a folder tree of pairs, or the VLF dataset as published.

`find_pairs(data, task)` accepts

- a JSON Lines manifest (the pairs module's format; optional per-item ``text``, ``image_features``, ``semantics``);
- a folder holding, at any depth up to three below it, sibling role folders of the task: fusekit's own layout
  (``ir``/``vi``, ``mri``/``other``, ``over``/``under``, ``a``/``b``), the VLF names (``IR``/``VI``, ``MRI``/``T``,
  ``OVER``/``UNDER``, ``NEAR``/``FAR``) or plain ``a``/``b``, ``A``/``B``. A root with one folder per task
  (``IVF/``, ``MIF/`` ... as ``shared/train`` and ``shared/data``) is narrowed to the task's folder first.
  Items are named ``<folder path>/<stem>`` so names stay unique across datasets;
- the VLF dataset root (``Image/<TASK>/<dataset>/<modality>/<name>.png``, ``TextFeature/<TASK>/<dataset>/<name>.npy``,
  ``Image/<TASK>/<dataset>/train.txt`` / ``test.txt``), with its text features attached to each item.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import FusekitError
from ...io.pairs import Item, Selection, match_folders, read_manifest

# Role folder names per task, fusekit's (= shared/train, shared/data) first, then the VLF dataset's.
ROLE_FOLDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "ivf": (("ir", "vi"), ("IR", "VI")),
    "mif": (("mri", "other"), ("MRI", "T"), ("MRI", "CT"), ("MRI", "PET"), ("MRI", "SPECT")),
    "mef": (("over", "under"), ("OVER", "UNDER")),
    "mff": (("a", "b"), ("NEAR", "FAR")),
}
GENERIC_FOLDERS = (("a", "b"), ("A", "B"))
MAX_DEPTH = 3


def role_folders(folder: Path, task: str) -> tuple[str, str] | None:
    """The (A, B) folder names of `task` that both exist directly inside `folder`, if any."""
    for a, b in ROLE_FOLDERS[task] + GENERIC_FOLDERS:
        if (folder / a).is_dir() and (folder / b).is_dir():
            return a, b
    return None


def is_vlf_root(folder: Path) -> bool:
    return (folder / "Image").is_dir() and (folder / "TextFeature").is_dir()


def find_pairs(data: str | os.PathLike, task: str, split: str = "train") -> Selection:
    """The pairs under `data` (manifest file, pair folder tree or VLF root) for `task`; see the module doc."""
    path = Path(data)
    if path.is_file():
        return read_manifest(path)
    if not path.is_dir():
        raise FusekitError(f"training data not found: {data}", "give a folder of pairs, a VLF root or a manifest")
    if is_vlf_root(path):
        return read_vlf(path, task, split)
    for name in (task.upper(), task):
        if (path / name).is_dir() and role_folders(path, task) is None:
            path = path / name
            break
    pair_dirs = _pair_folders(path, task)
    if not pair_dirs:
        wanted = " or ".join(f"{a}/ + {b}/" for a, b in ROLE_FOLDERS[task][:2])
        raise FusekitError(f"no {task.upper()} pairs under {data}", f"expected role folders {wanted} (at most {MAX_DEPTH} levels down), a VLF root or a manifest")
    items, problems = [], []
    for folder, (a, b) in pair_dirs:
        prefix = folder.relative_to(path).as_posix()
        selection = match_folders({"a": folder / a, "b": folder / b})
        for item in selection.items:
            items.append(Item(f"{prefix}/{item.name}" if prefix != "." else item.name, item.paths, item.fields))
        problems += [(f"{prefix}/{name}", reason) for name, reason in selection.problems]
    return Selection(items, problems)


def _pair_folders(root: Path, task: str) -> list[tuple[Path, tuple[str, str]]]:
    """Folders at depth ≤ MAX_DEPTH below `root` (root included) that hold the task's two role folders."""
    found, frontier = [], [root]
    for _ in range(MAX_DEPTH + 1):
        next_frontier = []
        for folder in frontier:
            roles = role_folders(folder, task)
            if roles:
                found.append((folder, roles))
                continue
            next_frontier += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        frontier = next_frontier
    return sorted(found, key=lambda entry: str(entry[0]))


# ------------------------------------------------------------------------------------------------ VLF dataset


def read_vlf(root: Path, task: str, split: str = "train", datasets: list[str] | None = None) -> Selection:
    """Pairs of the VLF dataset for `task` and `split` (``train``/``test``), each with its ``text`` feature file.

    Every dataset folder under ``Image/<TASK>/`` with a ``<split>.txt`` list is used (or only `datasets`). The
    names in the list may carry an extension (``00001.png``), as in the released lists.
    """
    task_dir = root / "Image" / task.upper()
    if not task_dir.is_dir():
        raise FusekitError(f"VLF root {root} has no Image/{task.upper()} folder", "check the task or the path")
    items, problems = [], []
    dataset_dirs = sorted(p for p in task_dir.iterdir() if p.is_dir())
    if datasets:
        dataset_dirs = [p for p in dataset_dirs if p.name in datasets]
    for dataset_dir in dataset_dirs:
        listing = dataset_dir / f"{split}.txt"
        roles = role_folders(dataset_dir, task)
        if not listing.is_file() or roles is None:
            continue
        names = [line.strip().rsplit(".", 1)[0] if "." in line.strip() else line.strip()
                 for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        feature_dir = root / "TextFeature" / task.upper() / dataset_dir.name
        for name in names:
            paths = {role: _find_image(dataset_dir / folder, name) for role, folder in zip(("a", "b"), roles)}
            text = feature_dir / f"{name}.npy"
            item_name = f"{dataset_dir.name}/{name}"
            missing = [str(dataset_dir / folder / name) for (role, p), folder in zip(paths.items(), roles) if p is None]
            if not text.is_file():
                missing.append(str(text))
            if missing:
                problems.append((item_name, f"missing {', '.join(missing)}"))
                continue
            items.append(Item(item_name, {"a": str(paths["a"]), "b": str(paths["b"])}, {"text": str(text)}))
    if not items and not problems:
        raise FusekitError(f"no {split} pairs for {task.upper()} in the VLF root {root}", f"expected Image/{task.upper()}/<dataset>/{split}.txt")
    return Selection(items, problems)


def _find_image(folder: Path, name: str) -> Path | None:
    for suffix in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None
