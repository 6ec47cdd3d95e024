"""`fusekit datasets`: benchmark folder trees laid out like each public download (built here from DEV images, with
the real datasets' folder and file names and file formats), a wrong layout, a missing pair, unregistered pairs."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from conftest import DATA, assert_user_error, run_fusekit
from fusekit.app.datasets import DATASETS, find_pairs
from fusekit.io.pairs import read_manifest

MSRS_NAMES = ["00028N", "00040N", "00047N", "00051N", "00103D", "00107D"]


def place(source, target):
    """`source` at `target`: a link when the format is the same, else re-encoded in the target's format (as the
    download ships it: RoadScene and LLVIP JPEG, MEFB TIFF, ...)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix.lower() == target.suffix.lower():
        target.symlink_to(source)
    else:
        Image.open(source).convert("RGB").save(target)
    return target


def dev(task, dataset, folder, name):
    return DATA / task / dataset / folder / f"{name}.png"


def build_msrs(root, names=MSRS_NAMES):
    for name in names:
        place(dev("IVF", "MSRS", "ir", name), root / "test" / "ir" / f"{name}.png")
        place(dev("IVF", "MSRS", "vi", name), root / "test" / "vi" / f"{name}.png")
    return names


def build_m3fd(root):
    for number, name in enumerate(MSRS_NAMES[:3]):
        place(dev("IVF", "MSRS", "ir", name), root / "Ir" / f"{number:05d}.png")
        place(dev("IVF", "MSRS", "vi", name), root / "Vis" / f"{number:05d}.png")
    return [f"{n:05d}" for n in range(3)]


def build_roadscene(root):
    for name in ("FLIR_06570", "FLIR_08858"):
        place(dev("IVF", "RoadScene", "ir", name), root / "cropinfrared" / f"{name}.jpg")
        place(dev("IVF", "RoadScene", "vi", name), root / "crop_LR_visible" / f"{name}.jpg")
    return ["FLIR_06570", "FLIR_08858"]


def build_tno(root):
    for name in ("10", "18"):
        place(dev("IVF", "TNO", "ir", name), root / "ir" / f"{name}.png")
        place(dev("IVF", "TNO", "vi", name), root / "vi" / f"{name}.png")
    return ["10", "18"]


def build_llvip(root):
    for number, name in zip((190001, 190002), MSRS_NAMES[:2]):
        place(dev("IVF", "MSRS", "ir", name), root / "infrared" / "test" / f"{number}.jpg")
        place(dev("IVF", "MSRS", "vi", name), root / "visible" / "test" / f"{number}.jpg")
    place(dev("IVF", "MSRS", "ir", MSRS_NAMES[2]), root / "infrared" / "train" / "010001.jpg")  # another split: not counted
    place(dev("IVF", "MSRS", "vi", MSRS_NAMES[2]), root / "visible" / "train" / "010001.jpg")
    return ["190001", "190002"]


def build_harvard(root):
    """xianming-gu's layout: CT-MRI/{CT,MRI}, PET-MRI/{PET,MRI}, SPECT-MRI/{SPECT,MRI}, files named by slice number."""
    names = []
    for path in sorted((DATA / "MIF" / "Harvard" / "mri").glob("*.png")):
        modality, _, number = path.stem.partition("_")
        place(path, root / f"{modality}-MRI" / "MRI" / f"{number}.png")
        place(DATA / "MIF" / "Harvard" / "other" / path.name, root / f"{modality}-MRI" / modality / f"{number}.png")
        names.append(path.stem)
    return sorted(names)


def build_mefb(root):
    """MEFB: input/<scene>/<scene>_A.* (under-exposed) and <scene>_B.* (over-exposed), mixed formats."""
    scenes = {"Balloons": ".png", "Lamp": ".tif", "Mask": ".jpg"}
    for scene, suffix in scenes.items():
        place(dev("MEF", "MEFB", "under", scene), root / "input" / scene / f"{scene}_A{suffix}")
        place(dev("MEF", "MEFB", "over", scene), root / "input" / scene / f"{scene}_B{suffix}")
    return sorted(scenes)


def build_sice(root):
    for number, scene in enumerate(("Chair", "Igloo"), 1):
        place(dev("MEF", "MEFB", "over", scene), root / "test" / "over" / f"{number}.png")
        place(dev("MEF", "MEFB", "under", scene), root / "test" / "under" / f"{number}.png")
    return ["1", "2"]


def build_lytro(root):
    """Nejati's release: lytro-NN-A.jpg and lytro-NN-B.jpg side by side."""
    for number, name in enumerate(("temple", "savic_03"), 1):
        place(dev("MFF", "MFIFB", "a", name), root / f"lytro-{number:02d}-A.jpg")
        place(dev("MFF", "MFIFB", "b", name), root / f"lytro-{number:02d}-B.jpg")
    return ["lytro-01", "lytro-02"]


def build_mffw(root):
    """MFIFB: input/mffw_NN/mffw_NN_A.png, ...; other MFIFB scenes beside them are not MFFW."""
    for name in ("mffw_06", "mffw_07", "mffw_08"):
        place(dev("MFF", "MFFW", "a", name), root / "input" / name / f"{name}_A.png")
        place(dev("MFF", "MFFW", "b", name), root / "input" / name / f"{name}_B.png")
    place(dev("MFF", "MFIFB", "a", "temple"), root / "input" / "temple" / "temple_A.png")
    place(dev("MFF", "MFIFB", "b", "temple"), root / "input" / "temple" / "temple_B.png")
    return ["mffw_06", "mffw_07", "mffw_08"]


def build_realmff(root):
    for number, name in zip((701, 702), ("aymaz_05", "aymaz_12")):
        place(dev("MFF", "MFIFB", "a", name), root / "test" / "imageA" / f"{number}_A.png")
        place(dev("MFF", "MFIFB", "b", name), root / "test" / "imageB" / f"{number}_B.png")
    return ["701", "702"]


LAYOUTS = {
    "MSRS": (build_msrs, "test/ir", "test/vi"),
    "M3FD": (build_m3fd, "Ir", "Vis"),
    "RoadScene": (build_roadscene, "cropinfrared", "crop_LR_visible"),
    "TNO": (build_tno, "ir", "vi"),
    "LLVIP": (build_llvip, "infrared/test", "visible/test"),
    "Harvard": (build_harvard, "-MRI/MRI", "-MRI/"),
    "MEFB": (build_mefb, "_B.", "_A."),  # A is the over-exposed image, MEFB's _B file
    "SICE": (build_sice, "over", "under"),
    "Lytro": (build_lytro, "-A.jpg", "-B.jpg"),
    "MFFW": (build_mffw, "_A.png", "_B.png"),
    "RealMFF": (build_realmff, "imageA", "imageB"),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_finds_the_pairs_of_each_public_layout_and_writes_a_manifest(tmp_path, name):
    build, a_marker, b_marker = LAYOUTS[name]
    root = tmp_path / name
    expected = build(root)
    found = find_pairs(name, root)
    assert [item.name for item in found.items] == expected
    assert not found.problems
    for item in found.items:
        assert a_marker in item.a and b_marker in item.b, (item.a, item.b)
    manifest = tmp_path / "lists" / f"{name}.jsonl"
    result = run_fusekit("datasets", name.lower(), "--root", root, "-o", manifest)
    assert result.returncode == 0, result.stderr.decode()
    read_back = read_manifest(manifest).items  # relative paths resolve from the manifest's folder
    assert [item.name for item in read_back] == expected
    assert [(os.path.normpath(i.a), os.path.normpath(i.b)) for i in read_back] == [(i.a, i.b) for i in found.items]
    for item in read_back:
        assert Image.open(item.a).size == Image.open(item.b).size
        assert item.fields["dataset"] == DATASETS[name.lower()].name and item.fields["task"] == DATASETS[name.lower()].task


def test_harvard_subsets_and_the_count_check(tmp_path):
    build_harvard(tmp_path)
    pet = find_pairs("Harvard-PET", tmp_path)
    assert [item.name for item in pet.items] == ["PET_25073", "PET_30067", "PET_41042"]
    everything = find_pairs("harvard", tmp_path)
    assert len(everything.items) == 10
    assert any("FILM appendix B" in note and "50" in note for _, note in everything.notes)
    # MSRS's test split is published whole (361 pairs): six is an incomplete download, said on stderr.
    msrs = tmp_path / "msrs"
    build_msrs(msrs)
    result = run_fusekit("datasets", "MSRS", "--root", msrs)
    assert result.returncode == 0
    assert "found 6 pairs, but the test split has 361" in result.stderr.decode()
    assert len(result.stdout.decode().splitlines()) == 6


def test_wrong_layout_is_an_error_naming_the_expected_one(tmp_path):
    root = tmp_path / "msrs"
    for name in MSRS_NAMES[:2]:  # LLVIP-style folder names are not MSRS's
        place(dev("IVF", "MSRS", "ir", name), root / "infrared" / f"{name}.png")
        place(dev("IVF", "MSRS", "vi", name), root / "visible" / f"{name}.png")
    manifest = tmp_path / "msrs.jsonl"
    stderr = assert_user_error(run_fusekit("datasets", "MSRS", "--root", root, "-o", manifest), "datasets", 1, "does not look like MSRS")
    assert "test/ir/{name}.png + test/vi/{name}.png" in stderr
    assert not manifest.exists()
    # Only one side unpacked: the other side's folder rule is named.
    only_ir = tmp_path / "half"
    for name in MSRS_NAMES[:2]:
        place(dev("IVF", "MSRS", "ir", name), only_ir / "test" / "ir" / f"{name}.png")
    assert_user_error(run_fusekit("datasets", "MSRS", "--root", only_ir), "datasets", 1, "no B image (visible) matching test/vi/{name}")
    assert_user_error(run_fusekit("datasets", "MSRS", "--root", tmp_path / "nowhere"), "datasets", 1, "dataset folder not found")
    assert_user_error(run_fusekit("datasets", "NotADataset", "--root", root), "datasets", 2, "unknown dataset")
    assert_user_error(run_fusekit("datasets", "MSRS", "--root", root, "--split", "val"), "datasets", 2, "no split 'val'")


def test_missing_and_unregistered_pairs_are_named_and_nothing_is_written(tmp_path):
    root = tmp_path / "msrs"
    build_msrs(root)
    (root / "test" / "vi" / "00047N.png").unlink()
    unregistered = root / "test" / "vi" / "00103D.png"
    unregistered.unlink()
    Image.open(dev("IVF", "MSRS", "vi", "00103D")).crop((0, 0, 320, 240)).save(unregistered)
    manifest = tmp_path / "msrs.jsonl"
    stderr = assert_user_error(run_fusekit("datasets", "MSRS", "--root", root, "-o", manifest), "datasets", 1, "2 of 6 pairs")
    assert "00047N: missing its B image (visible)" in stderr
    assert "00103D: A is 640x480 but B is 320x240" in stderr
    assert not manifest.exists()
    result = run_fusekit("datasets", "MSRS", "--root", root, "-o", manifest, "--allow-missing")
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line)["name"] for line in manifest.read_text().splitlines()] == ["00028N", "00040N", "00051N", "00107D"]


def test_listing_and_details():
    result = run_fusekit("datasets", "--json")
    assert result.returncode == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"MSRS", "M3FD", "RoadScene", "TNO", "LLVIP", "Harvard", "Harvard-CT", "Harvard-PET", "Harvard-SPECT",
                         "MEFB", "SICE", "Lytro", "MFFW", "RealMFF"}
    # FILM appendix B's split sizes.
    film = {(name, p["split"]): p["count"] for name, row in rows.items() for p in row["published"] if p["source"].startswith("FILM")}
    assert film == {("MSRS", "test"): 361, ("MSRS", "train"): 1083, ("M3FD", "test"): 100, ("RoadScene", "test"): 70,
                    ("Harvard", "all"): 50, ("MEFB", "all"): 40, ("SICE", "test"): 90, ("SICE", "train"): 499,
                    ("Lytro", "all"): 20, ("RealMFF", "test"): 71, ("RealMFF", "train"): 639}
    details = run_fusekit("datasets", "mefb").stdout.decode()
    assert "input/{name}/{name}_B.png + input/{name}/{name}_A.png" in details and "over-exposed" in details
