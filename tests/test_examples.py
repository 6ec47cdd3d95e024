"""The example pipelines on real pairs: examples/Makefile (one fusekit call per pair and step) and the SLURM array
scripts (batch calls, one per stage and shard, with the SLURM variables set by hand) give the same outputs; make
resumes and redoes only what an input change touches; the shards are disjoint and complete.

Three Harvard MIF pairs (256x256; a CT, a PET and a SPECT pair) keep the ~20 fusekit calls under a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DATA, REPO
from fusekit.io.formats import read_safetensors

HARVARD = DATA / "MIF" / "Harvard"
NAMES = ["CT_2013", "PET_25073", "SPECT_4011"]
FUSEKIT = f"{sys.executable} -m fusekit"


def environment(tmp_path, **extra) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    env.pop("FUSEKIT_DEBUG", None)
    env.update(FUSEKIT_CACHE=str(tmp_path / "cache"), **extra)
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Copies of the pairs, then the Makefile run and the SLURM run over them (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("examples")
    for role in ("mri", "other"):
        (tmp / role).mkdir()
        for name in NAMES:
            shutil.copy(HARVARD / role / f"{name}.png", tmp / role / f"{name}.png")
    make = subprocess.run(
        ["make", "-f", str(REPO / "examples" / "Makefile"), "-j2", "TASK=mif", f"A={tmp / 'mri'}", f"B={tmp / 'other'}",
         f"OUT={tmp / 'make'}", f"FUSEKIT={FUSEKIT}", f"PYTHON={sys.executable}"],
        capture_output=True, env=environment(tmp),
    )
    assert make.returncode == 0, make.stderr.decode()[-3000:]
    shards = 2
    env = environment(tmp, TASK="mif", A=str(tmp / "mri"), B=str(tmp / "other"), OUT=str(tmp / "slurm"), FUSEKIT=FUSEKIT,
                      SLURM_ARRAY_TASK_COUNT=str(shards), PYTHON=sys.executable, FUSEKIT_EXAMPLES=str(REPO / "examples"))
    for stage in ("describe", "encode-text", "fuse", "metrics"):
        for shard in range(shards):
            done = subprocess.run(["bash", str(REPO / "examples" / "slurm" / "stage.sbatch"), stage], capture_output=True,
                                  env={**env, "SLURM_ARRAY_TASK_ID": str(shard)})
            assert done.returncode == 0, (stage, shard, done.stderr.decode()[-3000:])
    merge = subprocess.run(["bash", str(REPO / "examples" / "slurm" / "merge.sbatch")], capture_output=True, env=env)
    assert merge.returncode == 0, merge.stderr.decode()[-3000:]
    return tmp, merge.stdout.decode()


def test_makefile_builds_every_step_for_every_pair(runs):
    tmp, _ = runs
    out = tmp / "make"
    for folder, suffix in (("descriptions", "json"), ("text", "safetensors"), ("fused", "png"), ("metrics", "json")):
        assert sorted(path.stem for path in (out / folder).glob(f"*.{suffix}")) == NAMES, folder
    merged = json.loads((out / "metrics.json").read_text())
    assert [row["name"] for row in merged["rows"]] == NAMES
    assert not list(out.rglob(".fusekit-tmp-*"))


def test_slurm_batch_gives_the_outputs_of_the_single_pair_commands(runs):
    tmp, report = runs
    make, slurm = tmp / "make", tmp / "slurm"
    for name in NAMES:
        assert (slurm / "fused" / f"{name}.png").read_bytes() == (make / "fused" / f"{name}.png").read_bytes(), name
        batch_text, _ = read_safetensors(slurm / "text" / f"{name}.safetensors", "text-features")
        single_text, _ = read_safetensors(make / "text" / f"{name}.safetensors", "text-features")
        assert batch_text.keys() == single_text.keys()
        assert all((batch_text[key] == single_text[key]).all() for key in batch_text), name
        batch_doc = json.loads((slurm / "descriptions" / f"{name}.json").read_text())
        single_doc = json.loads((make / "descriptions" / f"{name}.json").read_text())
        assert batch_doc["images"] == single_doc["images"], name
    merged_batch = json.loads((slurm / "metrics.json").read_text())
    merged_single = json.loads((make / "metrics.json").read_text())
    for document in (merged_batch, merged_single):
        for row in document["rows"]:
            row.pop("fused")  # the only difference: each run's own output folder
    assert merged_batch == merged_single  # same rows, same values, the same means
    assert "fuse: 3 processed, 0 skipped, 0 failed" in report


def test_slurm_shards_are_disjoint_and_complete(runs):
    tmp, _ = runs
    slurm = tmp / "slurm"
    shard_rows = [[row["name"] for row in json.loads((slurm / "metrics" / f"shard-{k}.json").read_text())["rows"]] for k in (0, 1)]
    assert not set(shard_rows[0]) & set(shard_rows[1])
    assert sorted(shard_rows[0] + shard_rows[1]) == NAMES
    for stage in ("describe", "encode-text", "fuse", "metrics"):
        summaries = [json.loads((slurm / "summaries" / f"{stage}-{k}.json").read_text()) for k in (0, 1)]
        assert [s["processed"] for s in summaries] == [len(rows) for rows in shard_rows], stage
        assert all(s["failed"] == 0 for s in summaries)


def test_make_is_up_to_date_and_an_input_change_redoes_only_its_pair(runs):
    tmp, _ = runs
    base = ["make", "-f", str(REPO / "examples" / "Makefile"), "TASK=mif", f"A={tmp / 'mri'}", f"B={tmp / 'other'}",
            f"OUT={tmp / 'make'}", f"FUSEKIT={FUSEKIT}", f"PYTHON={sys.executable}"]
    assert subprocess.run(base + ["-q"], env=environment(tmp)).returncode == 0  # nothing to do
    source = tmp / "other" / "PET_25073.png"
    os.utime(source, (source.stat().st_mtime + 10, source.stat().st_mtime + 10))
    plan = subprocess.run(base + ["-n"], capture_output=True, env=environment(tmp)).stdout.decode().splitlines()
    fusekit_lines = [line for line in plan if "-m fusekit" in line]
    assert len(fusekit_lines) == 4 and all("PET_25073" in line for line in fusekit_lines), plan
    assert any("merge_metrics.py" in line for line in plan)
    # An interrupted make: a pair whose fused image never got written is redone from there, nothing else.
    before = {name: (tmp / "make" / "text" / f"{name}.safetensors").stat().st_mtime_ns for name in NAMES}
    (tmp / "make" / "fused" / "CT_2013.png").unlink()
    done = subprocess.run(base, capture_output=True, env=environment(tmp))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    after = {name: (tmp / "make" / "text" / f"{name}.safetensors").stat().st_mtime_ns for name in NAMES}
    assert after["CT_2013"] == before["CT_2013"] and after["SPECT_4011"] == before["SPECT_4011"]
    assert after["PET_25073"] > before["PET_25073"]
    assert (tmp / "make" / "fused" / "CT_2013.png").read_bytes() == (tmp / "slurm" / "fused" / "CT_2013.png").read_bytes()
    assert subprocess.run(base + ["-q"], env=environment(tmp)).returncode == 0
