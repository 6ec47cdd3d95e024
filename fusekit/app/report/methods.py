"""The methods a report compares: registered models that fusekit runs (through the fuse runner, `fusekit.app.fuse.
Fuser`), and folders of images another tool already fused (``--fused NAME=DIR``).

Each method produces one fused PNG per pair, found by pair name: a model's go to ``OUT/fused/<method>/<pair>.png``
(written atomically, and reused by the next run, which is what makes a report resumable), a folder's are read
where they are. Seconds per pair are measured around reading, fusing and writing one pair.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import FusekitError, UsageError
from ...io.images import IMAGE_SUFFIXES
from ...io.pairs import Item

GUIDANCE_OPTIONS = ("weights", "text", "image_features", "semantics")


@dataclass
class ModelMethod:
    """A registered model run by fusekit, with its own weights and guidance (`options`: GUIDANCE_OPTIONS → path)."""

    name: str
    model: str
    options: dict[str, str] = field(default_factory=dict)
    kind: str = "model"
    _fuser: object = field(default=None, repr=False)

    def prepare(self, task: str, device: str, precision: str, items: list[Item]) -> None:
        """Load the model once (a bad model, task, weights or missing guidance fails here, before any work)."""
        from ..fuse import Fuser

        options = {key: value for key, value in self.options.items() if key != "weights"}
        self._fuser = Fuser(self.model, task, self.options.get("weights"), device=device, precision=precision, **options)
        self._fuser.check_guidance_given(items)

    @property
    def parameters(self) -> int | None:
        module = getattr(self._fuser, "module", None)
        return None if module is None else int(sum(p.numel() for p in module.parameters()))

    def fused_path(self, out: Path, item: Item) -> Path:
        return out / "fused" / self.name / f"{item.name}.png"

    def produce(self, out: Path, item: Item) -> tuple[Path, float | None]:
        """The pair's fused image (made unless an earlier run left it) and the seconds it took (None if reused)."""
        from ...io.atomic import check_not_input
        from ...io.images import write_image

        path = self.fused_path(out, item)
        if path.exists():
            return path, None
        started = time.perf_counter()
        image = self._fuser.fuse([self._fuser.load(item)])[0]
        check_not_input(path, [item.a, item.b])
        write_image(path, image)
        return path, time.perf_counter() - started


@dataclass
class FolderMethod:
    """Images fused elsewhere, one per pair, named after the pair (any image suffix)."""

    name: str
    folder: Path
    kind: str = "folder"
    parameters: int | None = None

    def prepare(self, task: str, device: str, precision: str, items: list[Item]) -> None:
        if not self.folder.is_dir():
            raise FusekitError(f"--fused {self.name}={self.folder}: folder not found", "give a folder of fused images named after the pairs")

    def fused_path(self, out: Path, item: Item) -> Path:
        for suffix in IMAGE_SUFFIXES:
            for candidate in (self.folder / f"{item.name}{suffix}", self.folder / f"{item.name}{suffix.upper()}"):
                if candidate.is_file():
                    return candidate
        return self.folder / f"{item.name}.png"

    def produce(self, out: Path, item: Item) -> tuple[Path, float | None]:
        path = self.fused_path(out, item)
        if not path.is_file():
            raise FusekitError(f"{self.name}: no fused image for pair {item.name!r} in {self.folder}", f"name it {item.name}.png")
        return path, None


def parse_methods(models: list[str], fused: dict[str, str], options: dict[str, dict[str, str]], task: str) -> list:
    """`--models` (``baselines`` = every training-free model of the task) and `--fused` → methods, in the order
    given; per-model options (``--weights film=PATH`` ...) must name a model in `models`."""
    from ...models.registry import FUSION_MODELS

    names: list[str] = []
    for entry in models:
        if entry.lower() == "baselines":
            names += [name for name, spec in FUSION_MODELS.items() if spec.kind == "training-free" and task in spec.tasks]
        else:
            names.append(FUSION_MODELS.canonical(entry))
    names = list(dict.fromkeys(names))
    for option, per_model in options.items():
        for model in per_model:
            if model not in names:
                raise UsageError(f"--{option.replace('_', '-')} {model}=...: {model!r} is not in --models", f"add it to --models or drop the option")
    methods: list = [ModelMethod(name, name, {option: per_model[name] for option, per_model in options.items() if name in per_model}) for name in names]
    for name, folder in fused.items():
        if not re.fullmatch(r"[\w.+-]+", name) or name.startswith("."):
            raise UsageError(f"bad method name {name!r} in --fused", "use letters, digits and . _ + - (it names a folder of the report)")
        if name in names:
            raise UsageError(f"--fused {name}=... repeats the name of a model", "give the folder another name")
        methods.append(FolderMethod(name, Path(folder)))
    if not methods:
        raise UsageError("no method to compare", "give --models (e.g. film,compact,baselines) and/or --fused NAME=DIR")
    return methods
