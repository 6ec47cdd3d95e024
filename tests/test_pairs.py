"""Matching, manifests and sharding over real DEV-set folders."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import DATA
from fusekit.errors import FusekitError, UsageError
from fusekit.io.pairs import parse_shard, read_manifest, select, take_shard

MSRS = DATA / "IVF" / "MSRS"
HARVARD = DATA / "MIF" / "Harvard"


def test_two_folders_are_matched_by_name():
    selection = select([str(HARVARD / "mri"), str(HARVARD / "other")])
    assert len(selection.items) == 10 and not selection.problems
    for item in selection.items:
        assert item.name in item.a and item.name in item.b and "/mri/" in item.a and "/other/" in item.b


def test_unmatched_names_are_reported(tmp_path):
    shutil.copytree(MSRS / "ir", tmp_path / "ir")
    shutil.copytree(MSRS / "vi", tmp_path / "vi")
    (tmp_path / "vi" / "00040N.png").unlink()
    selection = select([str(tmp_path / "ir"), str(tmp_path / "vi")])
    assert len(selection.items) == 5
    assert [name for name, _ in selection.problems] == ["00040N"]


def test_manifest_with_relative_paths_and_extra_fields(tmp_path):
    manifest = tmp_path / "pairs.jsonl"
    lines = [
        {"a": str(MSRS / "ir" / "00040N.png"), "b": str(MSRS / "vi" / "00040N.png"), "name": "night", "out": "night.png"},
        {"a": str(MSRS / "ir" / "00103D.png"), "b": str(MSRS / "vi" / "00103D.png"), "text": "feat/day.safetensors"},
        {"a": str(MSRS / "ir" / "00107D.png")},
    ]
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    selection = read_manifest(manifest)
    assert [item.name for item in selection.items] == ["night", "00103D"]
    assert selection.items[0].fields["out"] == str(tmp_path / "night.png")
    assert selection.items[1].fields["text"] == str(tmp_path / "feat" / "day.safetensors")
    assert selection.problems and "lacks b" in selection.problems[0][1]
    manifest.write_text("{bad json\n")
    with pytest.raises(FusekitError, match="line 1"):
        read_manifest(manifest)


def test_input_forms_are_exclusive_and_counted():
    with pytest.raises(UsageError):
        select([])
    with pytest.raises(UsageError):
        select([str(MSRS / "ir")])
    with pytest.raises(UsageError, match="mix of files and folders"):
        select([str(MSRS / "ir"), str(MSRS / "vi" / "00040N.png")])
    one = select([str(MSRS / "ir" / "00040N.png"), str(MSRS / "vi" / "00040N.png")])
    assert len(one.items) == 1 and one.items[0].name == "00040N"


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_of_real_pairs_are_disjoint_and_complete(count):
    items = []
    for task_dir in sorted(DATA.iterdir()):
        for dataset in sorted(p for p in task_dir.iterdir() if p.is_dir()) if task_dir.is_dir() else []:
            folders = sorted(p for p in dataset.iterdir() if p.is_dir())
            items += select([str(folders[0]), str(folders[1])]).items
    names = [f"{item.a}" for item in items]
    assert len(names) == 40
    shards = [take_shard(items, (k, count)) for k in range(count)]
    union = [item.a for shard in shards for item in shard]
    assert sorted(union) == sorted(names)
    assert len(set(union)) == len(union)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_spec_and_slurm_defaults():
    assert parse_shard("2/5") == (2, 5)
    assert parse_shard(None, {}) is None
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}) == (3, 4)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}) == (3, 4)
    for bad in ("5/5", "x/2", "1", "-1/3"):
        with pytest.raises(UsageError):
            parse_shard(bad)
