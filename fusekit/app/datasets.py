"""The public benchmark test sets the seed papers use, by name: where their pairs lie in a download, and how many
pairs each published split has (docs/REPORT.md).

fusekit downloads nothing. The user points at the folder they downloaded (``--root``); `find_pairs` matches the
dataset's file-name rules against it, checks that every pair is complete and registered (same size), compares the
count with the split the papers report, and returns a `fusekit.io.pairs.Selection` that every batch command (and
`fusekit report`) takes, or writes as a manifest (docs/FORMATS.md).

A layout is two path templates relative to the root, one per role, in fusekit's A/B order for the task (ivf: infrared,
visible; mif: MRI, other; mef: over-, under-exposed; mff: a, b). ``{name}`` stands for the pair name (the same in
both paths; ``{name:REGEX}`` restricts it); the image suffix is left out and any of PNG/JPEG/TIFF/BMP matches, in
any letter case. A dataset may list several layouts (its own release and the redistributions papers use); the first
one that finds any image is the one used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FusekitError, UsageError
from ..io.images import IMAGE_SUFFIXES
from ..io.pairs import Item, Selection


@dataclass(frozen=True)
class Layout:
    a: str
    b: str
    source: str  # which release or redistribution is laid out this way
    prefix: str = ""  # put before each pair name, to keep names unique across sub-sets (Harvard's three)


@dataclass(frozen=True)
class Published:
    """A split size a paper reports. `exact`: the papers' pairs are the whole split (e.g. MSRS' 361 test pairs),
    so another count means an incomplete or different download; otherwise the paper picked pairs it did not list."""

    split: str
    count: int
    source: str
    exact: bool = True


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str
    roles: tuple[str, str]  # what A and B are
    summary: str
    url: str
    layouts: dict[str, tuple[Layout, ...]]  # split → layouts to try
    published: tuple[Published, ...] = ()
    paper_name: str = ""  # the name paper tables use (default: `name`)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.layouts)

    @property
    def default_split(self) -> str:
        return "test" if "test" in self.layouts else self.splits[0]

    @property
    def results_name(self) -> str:
        return self.paper_name or self.name

    def describe(self) -> dict:
        """The row `fusekit datasets --json` prints."""
        return {
            "name": self.name, "task": self.task, "a": self.roles[0], "b": self.roles[1], "summary": self.summary,
            "url": self.url, "paper_name": self.results_name,
            "layouts": {split: [{"a": one.a, "b": one.b, "source": one.source} for one in layouts] for split, layouts in self.layouts.items()},
            "published": [{"split": p.split, "count": p.count, "source": p.source, "exact": p.exact} for p in self.published],
        }


def _folders(a: str, b: str, source: str, *prefixes: str) -> tuple[Layout, ...]:
    """`a/{name}` + `b/{name}` under each prefix folder ('' = the root itself)."""
    return tuple(Layout(f"{p}{a}/{{name}}", f"{p}{b}/{{name}}", f"{source}: {p}{a}/, {p}{b}/") for p in prefixes)


def _scenes(a_suffix: str, b_suffix: str, source: str, name: str = "{name}", *parents: str) -> tuple[Layout, ...]:
    """One folder per pair holding `<scene><a_suffix>` and `<scene><b_suffix>` (MEFB, MFIFB)."""
    return tuple(Layout(f"{p}{name}/{{name}}{a_suffix}", f"{p}{name}/{{name}}{b_suffix}", source) for p in parents)


_HARVARD = {
    "CT": (("CT-MRI/MRI/{name}", "CT-MRI/CT/{name}", "xianming-gu/Havard-Medical-Image-Fusion-Datasets"),
           ("MRI_CT/MRI/{name}", "MRI_CT/CT/{name}", "CDDFuse/DDFM test_img")),
    "PET": (("PET-MRI/MRI/{name}", "PET-MRI/PET/{name}", "xianming-gu/Havard-Medical-Image-Fusion-Datasets"),
            ("MRI_PET/MRI/{name}", "MRI_PET/PET/{name}", "CDDFuse/DDFM test_img")),
    "SPECT": (("SPECT-MRI/MRI/{name}", "SPECT-MRI/SPECT/{name}", "xianming-gu/Havard-Medical-Image-Fusion-Datasets"),
              ("MRI_SPECT/MRI/{name}", "MRI_SPECT/SPECT/{name}", "CDDFuse/DDFM test_img")),
}
_FILM_HARVARD = Published("all", 50, "FILM appendix B (MRI-CT, MRI-PET and MRI-SPECT together; the pairs are not listed)", exact=False)
_MFIFB = "xingchenzhang/MFIFB input/<scene>/<scene>_A|_B"


def _harvard(modalities: tuple[str, ...]) -> tuple[Layout, ...]:
    # Each modality's own layouts, CT before PET before SPECT; the prefix keeps 'CT_2013' apart from 'PET_2013'.
    return tuple(Layout(a, b, source, prefix=f"{m}_") for m in modalities for a, b, source in _HARVARD[m])


DATASETS: dict[str, Dataset] = {d.name.lower(): d for d in (
    Dataset("MSRS", "ivf", ("infrared", "visible"), "Multi-Spectral Road Scenarios, 1444 aligned pairs, day and night",
            "https://github.com/Linfeng-Tang/MSRS",
            {"test": _folders("ir", "vi", "Linfeng-Tang/MSRS", "test/", ""),
             "train": _folders("ir", "vi", "Linfeng-Tang/MSRS", "train/")},
            (Published("test", 361, "FILM appendix B; TGIF; TeSG 4.1"), Published("train", 1083, "FILM appendix B; TGIF; TeSG 4.1"),
             Published("test", 20, "MGFusion 4.1 (20 random test pairs, not listed)", exact=False))),
    Dataset("M3FD", "ivf", ("infrared", "visible"), "TarDAL's multi-scenario multi-modality fusion set (M3FD_Fusion, 300 pairs)",
            "https://github.com/JinyuanLiu-CV/TarDAL",
            {"test": (Layout("Ir/{name}", "Vis/{name}", "M3FD_Fusion Ir/, Vis/"),
                      Layout("M3FD_Fusion/Ir/{name}", "M3FD_Fusion/Vis/{name}", "M3FD_Fusion Ir/, Vis/"),
                      Layout("ir/{name}", "vi/{name}", "ir/, vi/ redistributions"))},
            (Published("test", 100, "FILM appendix B (the 100 pairs are not listed)", exact=False),
             Published("test", 20, "MGFusion 4.1 (20 random pairs, not listed)", exact=False))),
    Dataset("RoadScene", "ivf", ("infrared", "visible"), "FLIR-based road scenes, 221 aligned pairs",
            "https://github.com/hanna-xu/RoadScene",
            {"test": (Layout("cropinfrared/{name}", "crop_LR_visible/{name}", "hanna-xu/RoadScene cropinfrared/, crop_LR_visible/"),
                      Layout("ir/{name}", "vi/{name}", "ir/, vi/ redistributions (CDDFuse test_img/RoadScene)"))},
            (Published("test", 70, "FILM appendix B (70 validation + 70 test pairs, not listed)", exact=False),
             Published("test", 221, "TeSG 4.1 (all pairs)"),
             Published("test", 20, "MGFusion 4.1 (20 random pairs, not listed)", exact=False))),
    Dataset("TNO", "ivf", ("infrared", "visible"), "TNO Image Fusion Dataset, as the fusion repositories redistribute its pairs",
            "https://figshare.com/articles/dataset/TNO_Image_Fusion_Dataset/1008029",
            {"test": (Layout("ir/{name}", "vi/{name}", "ir/, vi/ redistributions (CDDFuse test_img/TNO: 25 pairs)"),)},
            (Published("test", 55, "MGFusion 4.1 (55 random pairs, not listed)", exact=False),)),
    Dataset("LLVIP", "ivf", ("infrared", "visible"), "Low-light visible-infrared pairs (15488), street scenes at night",
            "https://github.com/bupt-ai-cz/LLVIP",
            {"test": _folders("infrared/test", "visible/test", "bupt-ai-cz/LLVIP", ""),
             "train": _folders("infrared/train", "visible/train", "bupt-ai-cz/LLVIP", "")},
            (Published("test", 3463, "LLVIP release"), Published("train", 12025, "LLVIP release"),
             Published("test", 347, "TeSG 4.1 (347 random pairs, not listed)", exact=False),
             Published("test", 20, "MGFusion 4.1 (20 random pairs, not listed)", exact=False))),
    Dataset("Harvard", "mif", ("MRI", "CT, PET or SPECT"), "Harvard AANLIB MRI-CT, MRI-PET and MRI-SPECT pairs together",
            "http://www.med.harvard.edu/AANLIB/home.html", {"all": _harvard(("CT", "PET", "SPECT"))}, (_FILM_HARVARD,)),
    *(Dataset(f"Harvard-{m}", "mif", ("MRI", m), f"Harvard AANLIB MRI-{m} pairs", "http://www.med.harvard.edu/AANLIB/home.html",
              {"all": _harvard((m,))}, paper_name="Harvard") for m in ("CT", "PET", "SPECT")),
    Dataset("MEFB", "mef", ("over-exposed (_B)", "under-exposed (_A)"), "Multi-exposure image fusion benchmark, 100 pairs",
            "https://github.com/xingchenzhang/MEFB",
            {"all": _scenes("_B", "_A", "xingchenzhang/MEFB input/<scene>/<scene>_A|_B", "{name}", "input/", "")},
            (Published("all", 100, "MEFB release"), Published("all", 40, "FILM appendix B (the 40 pairs are not listed)", exact=False))),
    Dataset("SICE", "mef", ("over-exposed", "under-exposed"),
            "Cai et al.'s multi-exposure sequences, reduced to one over/under pair per scene as MEF papers use them",
            "https://github.com/csjcai/SICE",
            {"test": _folders("over", "under", "one pair per scene (SICE ships sequences; the papers do not list their choice)", "test/", ""),
             "train": _folders("over", "under", "one pair per scene", "train/")},
            (Published("test", 90, "FILM appendix B; TGIF", exact=False), Published("train", 499, "FILM appendix B; TGIF", exact=False))),
    Dataset("Lytro", "mff", ("a (source _A)", "b (source _B)"), "Nejati et al.'s 20 Lytro multi-focus pairs",
            "https://github.com/sametaymaz/Multi_focus_Image_Fusion_Dataset",
            {"all": (Layout("{name}-A", "{name}-B", "Nejati release lytro-NN-A.jpg, lytro-NN-B.jpg"),
                     *_scenes("_A", "_B", _MFIFB, "{name:lytro.*}", "input/", ""))},
            (Published("all", 20, "FILM appendix B; MTIF"),)),
    Dataset("MFFW", "mff", ("a (source _A)", "b (source _B)"), "Multi-focus images in the wild (defocus spread), 13 pairs",
            "https://github.com/xingchenzhang/MFIFB",
            {"all": _scenes("_A", "_B", _MFIFB, "{name:mffw.*}", "input/", "")},
            (Published("all", 13, "MFIFB (mffw_01 … mffw_13)"),)),
    Dataset("RealMFF", "mff", ("a (source _A)", "b (source _B)"), "Real-MFF: 710 real multi-focus pairs with ground truth",
            "https://github.com/Zancelot/Real-MFF",
            {"test": (Layout("test/imageA/{name}_A", "test/imageB/{name}_B", "test/imageA, test/imageB"),
                      Layout("imageA/{name}_A", "imageB/{name}_B", "Real-MFF imageA/<n>_A, imageB/<n>_B"),
                      *_folders("A", "B", "redistributions", "test/", "")),
             "train": (Layout("train/imageA/{name}_A", "train/imageB/{name}_B", "train/imageA, train/imageB"),
                       *_folders("A", "B", "redistributions", "train/"))},
            (Published("test", 71, "FILM appendix B; TGIF; MTIF", exact=False), Published("train", 639, "FILM appendix B", exact=False))),
)}


def get_dataset(name: str) -> Dataset:
    found = DATASETS.get(name.strip().lower())
    if found is None:
        raise UsageError(f"unknown dataset {name!r}", f"use one of {', '.join(d.name for d in DATASETS.values())} (see 'fusekit datasets')")
    return found


# ----------------------------------------------------------------------------------------------- finding pairs


def _pattern(template: str) -> re.Pattern:
    """A path template → a regex over root-relative POSIX paths (the first {name} captures, later ones must equal it)."""
    parts, seen = [], False
    for piece in re.split(r"(\{name(?::[^}]*)?\})", template):
        if piece.startswith("{name"):
            if seen:
                parts.append("(?P=name)")
            else:
                inner = piece[6:-1] if ":" in piece else r"[^/]+?"
                parts.append(f"(?P<name>{inner})")
                seen = True
        else:
            parts.append(re.escape(piece))
    suffixes = "|".join(re.escape(s) for s in IMAGE_SUFFIXES)
    return re.compile("".join(parts) + f"(?:{suffixes})", re.IGNORECASE)


def _image_files(root: Path) -> list[str]:
    """Root-relative POSIX paths of every image under `root` (hidden files and folders left out), sorted."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder).relative_to(root)
        found += [(base / f).as_posix() for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)


def _match(files: list[str], template: str) -> dict[str, str]:
    pattern, found = _pattern(template), {}
    for path in files:
        hit = pattern.fullmatch(path)
        if hit:
            found.setdefault(hit.group("name"), path)
    return found


@dataclass
class Found:
    """What `find_pairs` saw: the pairs, what is wrong, and how the count compares with the papers'."""

    dataset: Dataset
    split: str
    root: Path
    layouts: list[Layout]
    selection: Selection
    problems: list[tuple[str, str]] = field(default_factory=list)  # (pair, what is wrong): missing side, sizes differ
    notes: list[tuple[bool, str]] = field(default_factory=list)  # (a warning?, count check against a paper's split)

    @property
    def items(self) -> list[Item]:
        return self.selection.items


def find_pairs(dataset: Dataset | str, root: str | os.PathLike, split: str | None = None, check_sizes: bool = True) -> Found:
    """The pairs of `dataset`'s `split` under `root`. A folder where no layout finds an image is an error that says
    which layout was expected; incomplete pairs and pairs of different sizes are listed in `problems`."""
    dataset = get_dataset(dataset) if isinstance(dataset, str) else dataset
    split = split or dataset.default_split
    if split not in dataset.layouts:
        raise UsageError(f"{dataset.name} has no split {split!r}", f"use {' or '.join(dataset.splits)}")
    root = Path(root)
    if not root.is_dir():
        raise FusekitError(f"dataset folder not found: {root}", f"give --root the folder you downloaded {dataset.name} into")
    files = _image_files(root)
    used, a_files, b_files = [], {}, {}
    for layout in dataset.layouts[split]:
        a, b = _match(files, layout.a), _match(files, layout.b)
        if not a and not b:
            continue
        used.append(layout)
        prefix = layout.prefix
        for name, path in a.items():
            a_files.setdefault(prefix + name, path)
        for name, path in b.items():
            b_files.setdefault(prefix + name, path)
        if not prefix:  # one layout per dataset; prefixed layouts (Harvard's sub-sets) add up
            break
    if not used:
        expected = "; or ".join(f"{one.a}.png + {one.b}.png ({one.source})" for one in dataset.layouts[split])
        raise FusekitError(
            f"{root} does not look like {dataset.name} ({split} split): no image matches its layout",
            f"expected {expected}; point --root at the folder that holds them",
        )
    if not a_files or not b_files:
        have, lack = ("A", "B") if a_files else ("B", "A")
        template = " or ".join(getattr(one, lack.lower()) for one in used)
        raise FusekitError(
            f"{root} holds {len(a_files or b_files)} {have} images of {dataset.name} but no {lack} image "
            f"({dataset.roles[lack == 'B']}) matching {template}",
            "check that the download is complete and unpacked in place",
        )
    items, problems = [], []
    for name in sorted(set(a_files) | set(b_files)):
        if name not in a_files or name not in b_files:
            have, lack = ("A", "B") if name in a_files else ("B", "A")
            where = a_files.get(name) or b_files.get(name)
            problems.append((name, f"missing its {lack} image ({dataset.roles[lack == 'B']}); found only {have}: {where}"))
            continue
        items.append(Item(name, {"a": str(root / a_files[name]), "b": str(root / b_files[name])},
                          {"dataset": dataset.name, "split": split, "task": dataset.task}))
    if check_sizes:
        items, mismatched = _same_sizes(items)
        problems += mismatched
    found = Found(dataset, split, root, used, Selection(items, problems), problems)
    found.notes = _count_notes(dataset, split, len(items) + len(problems))
    return found


def _same_sizes(items: list[Item]) -> tuple[list[Item], list[tuple[str, str]]]:
    """Pairs whose A and B have the same width and height (read from the file headers, no decoding)."""
    from PIL import Image

    good, bad = [], []
    for item in items:
        sizes = []
        for role in ("a", "b"):
            try:
                with Image.open(item.paths[role]) as image:
                    sizes.append(image.size)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is reported by name
                bad.append((item.name, f"{item.paths[role]} is not a readable image ({exc})"))
                break
        else:
            if sizes[0] != sizes[1]:
                (wa, ha), (wb, hb) = sizes
                bad.append((item.name, f"A is {wa}x{ha} but B is {wb}x{hb} (pairs must be registered)"))
            else:
                good.append(item)
    return good, bad


def _count_notes(dataset: Dataset, split: str, count: int) -> list[tuple[bool, str]]:
    """The count against each size a paper reports for `split`: a warning where the papers used the whole split
    and the count differs (an incomplete or other version of the download), information otherwise."""
    notes = []
    for published in dataset.published:
        if published.split != split:
            continue
        if published.exact and count != published.count:
            notes.append((True, f"found {count} pairs, but the {split} split has {published.count} ({published.source}): the download is incomplete or another version"))
        elif published.exact:
            notes.append((False, f"{count} pairs, as {published.source} reports"))
        else:
            notes.append((False, f"{count} pairs; {published.source} uses {published.count}"))
    return notes


def manifest_lines(found: Found, relative_to: str | os.PathLike | None = None) -> str:
    """The JSON Lines manifest (docs/FORMATS.md) of the pairs found; paths relative to the manifest's folder when
    given (so the manifest and the dataset can move together), else absolute."""
    import json

    lines = []
    for item in found.items:
        paths = {}
        for role in ("a", "b"):
            path = os.path.abspath(item.paths[role])
            paths[role] = os.path.relpath(path, os.path.abspath(relative_to)) if relative_to is not None else path
        lines.append(json.dumps({"name": item.name, **paths, **item.fields}, ensure_ascii=False))
    return "\n".join(lines) + "\n"
