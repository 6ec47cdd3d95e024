"""`fusekit describe` with the offline stats backend: structure, determinism, informative content, batch forms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, assert_user_error, pair_paths, run_fusekit

PAIRS = {
    "ivf": ("IVF", "MSRS", "00051N"),
    "mif": ("MIF", "Harvard", "PET_25073"),
    "mef": ("MEF", "MEFB", "Lamp"),
    "mff": ("MFF", "MFFW", "mffw_08"),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEKIT_CACHE", str(tmp_path / "cache"))


def describe(task, *extra):
    a, b = pair_paths(*PAIRS[task])
    result = run_fusekit("describe", a, b, "--task", task, *extra)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout), result.stdout


@pytest.mark.parametrize("task", sorted(PAIRS))
def test_stats_document_structure(task):
    document, _ = describe(task)
    assert document["schema"] == "fusekit.descriptions/1.1"
    assert document["task"] == task
    assert document["backends"] == ["stats"]
    assert document["models"] == {"stats": "fusekit-stats-1"}
    a, b = pair_paths(*PAIRS[task])
    assert [image["role"] for image in document["images"]] == ["a", "b"]
    assert [image["path"] for image in document["images"]] == [str(a), str(b)]
    for image in document["images"]:
        assert len(image["sha256"]) == 64
        texts = image["texts"]
        assert set(texts["levels"]) == {"detail", "structure", "semantic"}
        assert all(len(text.split()) >= 10 for text in texts["levels"].values())
        # The paragraph is FILM-sized: several sentences, on the order of a hundred words.
        assert 60 <= len(texts["paragraph"].split()) <= 300
        assert texts["caption"].endswith(".")


def test_stats_is_deterministic():
    _, first = describe("ivf")
    _, second = describe("ivf")
    assert first == second


def test_infrared_text_names_hotspots_and_positions():
    document, _ = describe("ivf")
    infrared, visible = (image["texts"] for image in document["images"])
    assert "infrared" in infrared["caption"].lower()
    assert "warm" in infrared["levels"]["structure"]
    # MSRS 00051N: the largest warm region (a person) is in the lower right of the frame.
    assert "lower right" in infrared["levels"]["structure"]
    assert "heat sources" in infrared["levels"]["semantic"].lower()
    assert "visible-light" in visible["caption"]
    assert "dimly lit" in visible["levels"]["semantic"]


def test_exposure_text_reports_clipping_with_the_measured_fraction():
    document, _ = describe("mef")
    over, under = (image["texts"] for image in document["images"])
    from fusekit.io.images import read_image, to_grey

    a, b = pair_paths(*PAIRS["mef"])
    saturated = float((to_grey(read_image(a), rounded=False) >= 252).mean())
    assert f"{100 * saturated:.0f}% of the pixels are saturated" in over["levels"]["detail"]
    assert "over-exposed" in over["caption"] and "under-exposed" in under["caption"]
    assert "better exposed than the other image" in under["levels"]["structure"]


def test_multi_focus_text_compares_focus_with_the_partner():
    document, _ = describe("mff")
    texts = [image["texts"]["levels"]["detail"] for image in document["images"]]
    assert any("sharper focus than the other image" in text for text in texts)
    assert any("more blurred than the other image" in text for text in texts)


def test_medical_text_names_modalities():
    document, _ = describe("mif")
    mri, other = (image["texts"] for image in document["images"])
    assert mri["caption"].startswith("An MRI scan")
    assert other["caption"].startswith("A PET scan")
    assert "functional" in other["levels"]["semantic"]


def test_measurements_match_an_independent_opencv_computation():
    """Golden check of the numbers behind the words, against OpenCV (tolerance: 1e-6 relative on fractions/means,
    1 % on the Laplacian focus measure, whose border handling differs slightly)."""
    cv2 = pytest.importorskip("cv2")
    from fusekit.guidance.describe.measure import measure
    from fusekit.io.images import read_image

    a, _ = pair_paths(*PAIRS["mff"])
    image = read_image(a)
    m = measure(image)
    grey = cv2.cvtColor(cv2.imread(str(a)), cv2.COLOR_BGR2GRAY).astype(np.float64)
    # OpenCV's grey is rounded; ours is exact BT.601, so means agree to within half a grey level.
    assert m.mean == pytest.approx(grey.mean(), abs=0.5)
    laplacian = cv2.Laplacian(grey, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REPLICATE)
    h, w = grey.shape
    cell = laplacian[: h // 3, : w // 3]
    assert m.cell_focus[0, 0] == pytest.approx((cell ** 2).mean(), rel=0.05)


def test_single_image():
    a, _ = pair_paths(*PAIRS["ivf"])
    result = run_fusekit("describe", a, "--task", "ivf")
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert [image["role"] for image in document["images"]] == ["a"]


def test_batch_folders_to_directory_and_skip_existing(tmp_path):
    base = DATA / "MIF" / "Harvard"
    out = tmp_path / "descriptions"
    result = run_fusekit("describe", base / "mri", base / "other", "--task", "mif", "-o", out, "--shard", "0/4",
                         "--summary", tmp_path / "summary.json")
    assert result.returncode == 0, result.stderr.decode()
    files = sorted(out.glob("*.json"))
    names = sorted(p.stem for p in (base / "mri").glob("*.png"))
    assert [f.stem for f in files] == names[0::4]
    document = json.loads(files[0].read_text())
    assert document["name"] == files[0].stem
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["processed"] == len(files) and summary["failed"] == 0
    again = run_fusekit("describe", base / "mri", base / "other", "--task", "mif", "-o", out, "--shard", "0/4",
                        "--skip-existing", "--summary", tmp_path / "summary2.json")
    assert again.returncode == 0
    assert json.loads((tmp_path / "summary2.json").read_text())["skipped"] == len(files)


def test_batch_manifest_to_json_lines_keeps_going_past_a_bad_pair(tmp_path):
    a, b = pair_paths(*PAIRS["mff"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text(json.dumps({"a": str(a), "b": str(b), "name": "good"}) + "\n"
                        + json.dumps({"a": str(broken), "b": str(b), "name": "bad"}) + "\n")
    result = run_fusekit("describe", "--manifest", manifest, "--task", "mff", "-o", tmp_path / "all.jsonl")
    assert result.returncode == 1
    assert "bad:" in result.stderr.decode() and "not a readable image" in result.stderr.decode()
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["good"]


def test_unknown_backend_suggests_the_right_one():
    a, b = pair_paths(*PAIRS["ivf"])
    result = run_fusekit("describe", a, b, "--task", "ivf", "--backend", "stat")
    assert_user_error(result, "describe", 2, "did you mean 'stats'")


def test_missing_task_and_unknown_task_are_usage_errors():
    a, b = pair_paths(*PAIRS["ivf"])
    assert_user_error(run_fusekit("describe", a, b), "describe", 2, "--task")
    assert_user_error(run_fusekit("describe", a, b, "--task", "xyz"), "describe", 2, "unknown task")


def test_unreadable_image_is_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    a, _ = pair_paths(*PAIRS["ivf"])
    assert_user_error(run_fusekit("describe", a, bad, "--task", "ivf"), "describe", 1, "not a readable image")


def test_hotspot_box_area_and_position_on_a_synthetic_image():
    """Exact values: a 10 × 12 block at level 200 on a noiseless level-20 background."""
    from fusekit.guidance.describe.measure import measure

    image = np.full((90, 120), 20, np.uint8)
    image[70:80, 95:107] = 200
    m = measure(image)
    assert len(m.hotspots) == 1
    spot = m.hotspots[0]
    assert spot.box == (95, 70, 107, 80)
    assert spot.area_fraction == pytest.approx(120 / (90 * 120))
    assert spot.mean_level == pytest.approx(200.0)
    assert spot.position == "lower right"
    assert m.bright_clipped == 0.0 and m.dark_clipped == 0.0
    # 16-bit input gives the same measurements on the 0–255 scale.
    wide = measure(image.astype(np.uint16) * 257)
    assert wide.mean == pytest.approx(m.mean) and wide.hotspots[0].box == spot.box


def test_output_file_never_overwrites_an_input(tmp_path):
    import shutil

    a, b = pair_paths(*PAIRS["ivf"])
    copy = tmp_path / "a.png"
    shutil.copy(a, copy)
    result = run_fusekit("describe", copy, b, "--task", "ivf", "-o", copy)
    assert_user_error(result, "describe", 1, "is also an input")
    assert copy.read_bytes() == a.read_bytes()
