"""Every batch command keeps going past a bad pair in the middle of a batch: it reports that pair (one line on
stderr, the reason in the --summary JSON), completes the rest and exits 1. Real Harvard MIF pairs (256x256);
one source image is damaged, one pair lacks its B image.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import DATA, assert_user_error, run_fusekit

HARVARD = DATA / "MIF" / "Harvard"
NAMES = sorted(path.stem for path in (HARVARD / "mri").glob("*.png"))
DAMAGED, UNMATCHED = NAMES[4], NAMES[7]
GOOD = [name for name in NAMES if name not in (DAMAGED, UNMATCHED)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-pair")
    shutil.copytree(HARVARD / "mri", tmp / "mri")
    shutil.copytree(HARVARD / "other", tmp / "other")
    (tmp / "other" / f"{DAMAGED}.png").write_bytes((HARVARD / "other" / f"{DAMAGED}.png").read_bytes()[:300])
    (tmp / "other" / f"{UNMATCHED}.png").unlink()
    return tmp


def check_batch(result, command: str, summary_path, failed: list[str]) -> dict:
    stderr = assert_user_error(result, command, 1)
    for name in failed:
        assert f"fusekit {command}: error: {name}:" in stderr
    summary = json.loads(summary_path.read_text())
    assert sorted(entry["name"] for entry in summary["failures"]) == sorted(failed)
    assert all(entry["reason"] for entry in summary["failures"])
    assert summary["failed"] == len(failed) and summary["processed"] == len(GOOD)
    assert f"{len(GOOD)} processed, 0 skipped, {len(failed)} failed" in stderr
    return summary


def test_describe_fuse_and_metrics_go_past_a_bad_pair(sources, tmp_path):
    a, b = str(sources / "mri"), str(sources / "other")
    described = run_fusekit("describe", a, b, "--task", "mif", "-o", tmp_path / "descriptions", "--summary", tmp_path / "d.json",
                            env={"FUSEKIT_CACHE": str(tmp_path / "cache")})
    check_batch(described, "describe", tmp_path / "d.json", [DAMAGED, UNMATCHED])
    assert sorted(path.stem for path in (tmp_path / "descriptions").glob("*.json")) == GOOD

    fused = run_fusekit("fuse", a, b, "--task", "mif", "-o", tmp_path / "fused", "--summary", tmp_path / "f.json")
    summary = check_batch(fused, "fuse", tmp_path / "f.json", [DAMAGED, UNMATCHED])
    assert [entry["name"] for entry in summary["failures"]] == [UNMATCHED, DAMAGED]  # matching problems first
    assert sorted(path.stem for path in (tmp_path / "fused").glob("*.png")) == GOOD
    assert not [path for path in (tmp_path / "fused").iterdir() if path.name.startswith(".")]

    shutil.copy(HARVARD / "mri" / f"{GOOD[0]}.png", tmp_path / "fused" / f"{DAMAGED}.png")  # a fused image of the wrong pair: still a valid triple
    (tmp_path / "fused" / f"{GOOD[1]}.png").write_bytes(b"not a png")
    measured = run_fusekit("metrics", "--fused", tmp_path / "fused", "--a", a, "--b", b, "--json", "-o", tmp_path / "m.json",
                           "--summary", tmp_path / "ms.json")
    stderr = assert_user_error(measured, "metrics", 1)
    assert f"fusekit metrics: error: {GOOD[1]}:" in stderr
    rows = [row["name"] for row in json.loads((tmp_path / "m.json").read_text())["rows"]]
    assert GOOD[1] not in rows and set(GOOD[2:]) <= set(rows)


def test_encode_text_goes_past_a_damaged_descriptions_file(sources, tmp_path):
    folder = tmp_path / "descriptions"
    described = run_fusekit("describe", str(sources / "mri"), str(sources / "other"), "--task", "mif", "-o", folder,
                            env={"FUSEKIT_CACHE": str(tmp_path / "cache")})
    assert described.returncode == 1
    (folder / f"{GOOD[3]}.json").write_text('{"schema": "fusekit.descriptions/1.0", "images": [')
    (folder / ".fusekit-tmp-k1ll3d.json").write_text('{"schema": "fusekit.des')  # left by a killed describe: not an item
    encoded = run_fusekit("encode-text", folder, "-o", tmp_path / "text", "--summary", tmp_path / "e.json")
    stderr = assert_user_error(encoded, "encode-text", 1, contains=GOOD[3])
    summary = json.loads((tmp_path / "e.json").read_text())
    assert [entry["name"] for entry in summary["failures"]] == [GOOD[3]] and summary["processed"] == len(GOOD) - 1
    assert sorted(path.stem for path in (tmp_path / "text").glob("*.safetensors")) == [n for n in GOOD if n != GOOD[3]]
    assert "Traceback" not in stderr


def test_shards_from_slurm_report_each_bad_pair_once_and_cover_the_rest(sources, tmp_path):
    a, b = str(sources / "mri"), str(sources / "other")
    failures, processed = [], []
    for k in (0, 1):
        result = run_fusekit("fuse", a, b, "--task", "mif", "-o", tmp_path / "fused", "--summary", tmp_path / f"{k}.json",
                             env={"SLURM_ARRAY_TASK_ID": str(k), "SLURM_ARRAY_TASK_COUNT": "2"})
        summary = json.loads((tmp_path / f"{k}.json").read_text())
        assert result.returncode == (1 if summary["failed"] else 0), result.stderr.decode()
        failures += [entry["name"] for entry in summary["failures"]]
        processed.append(summary["processed"])
    assert sorted(failures) == sorted([DAMAGED, UNMATCHED])  # each reported by one shard only
    assert sum(processed) == len(GOOD) and min(processed) > 0
    assert sorted(path.stem for path in (tmp_path / "fused").glob("*.png")) == GOOD
