"""Issue 17, as a new user or a cluster user meets fusekit: SLURM array variables, exit codes, outputs that look
like files, and the wording of messages. Each test reproduces the failure the issue reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_user_error, pair_paths, run_fusekit

IR, VI = pair_paths("IVF", "MSRS", "00028N")
SLURM_TASK_1_OF_2 = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}


# ------------------------------------------------------------------------------------------------ 1. SLURM


def test_slurm_array_does_not_shard_away_one_pair(tmp_path):
    out = tmp_path / "single.png"
    result = run_fusekit("fuse", IR, VI, "--task", "ivf", "--model", "gff", "-o", out, env=SLURM_TASK_1_OF_2)
    assert result.returncode == 0, result.stderr.decode()
    assert out.is_file()


def test_slurm_array_metrics_of_one_triple_prints_its_row(tmp_path):
    fused = tmp_path / "fused.png"
    assert run_fusekit("fuse", IR, VI, "--task", "ivf", "--model", "gff", "-o", fused).returncode == 0
    result = run_fusekit("metrics", fused, IR, VI, "--metrics", "EN,SD", env=SLURM_TASK_1_OF_2)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("fused\t"), lines


def test_slurm_array_describe_of_one_pair(tmp_path):
    out = tmp_path / "d.json"
    result = run_fusekit("describe", IR, VI, "--task", "ivf", "--no-cache", "-o", out, env=SLURM_TASK_1_OF_2)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(out.read_text())["images"]


def test_slurm_shard_of_a_folder_still_applies_and_an_empty_shard_says_so(tmp_path):
    folders = {role: tmp_path / role for role in ("ir", "vi")}
    for role, source in zip(folders, (IR, VI)):
        folders[role].mkdir()
        (folders[role] / source.name).write_bytes(source.read_bytes())
    result = run_fusekit("fuse", folders["ir"], folders["vi"], "--task", "ivf", "--model", "gff", "-o", tmp_path / "out",
                         env=SLURM_TASK_1_OF_2)
    assert result.returncode == 0, result.stderr.decode()
    assert "shard 1/2 has no items" in result.stderr.decode()
    assert not list((tmp_path / "out").glob("*.png"))  # one pair, two shards: shard 1 has nothing to do
    shard0 = run_fusekit("fuse", folders["ir"], folders["vi"], "--task", "ivf", "--model", "gff", "-o", tmp_path / "out",
                         env={"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"})
    assert shard0.returncode == 0 and (tmp_path / "out" / IR.name).is_file()


# ---------------------------------------------------------------------------------------------- 9. exit codes


def test_unknown_device_is_a_usage_error(tmp_path):
    result = run_fusekit("fuse", IR, VI, "--task", "ivf", "--model", "gff", "-o", tmp_path / "x.png", "--device", "tpu")
    assert_user_error(result, "fuse", code=2, contains="unknown device 'tpu'")


def test_unknown_backend_is_a_usage_error(tmp_path):
    result = run_fusekit("describe", IR, "--task", "ivf", "--backend", "nope", "-o", tmp_path / "d.json")
    assert_user_error(result, "describe", code=2, contains="unknown describer backend")


def test_duplicate_manifest_names_are_a_usage_error(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"name": "x", "a": str(IR), "b": str(VI)}) + "\n" for _ in range(2)))
    result = run_fusekit("fuse", "--manifest", manifest, "--task", "ivf", "--model", "gff", "-o", tmp_path / "out")
    assert_user_error(result, "fuse", code=2, contains="appears twice")


def test_fuse_from_stdin_names_fuse_not_describe(tmp_path):
    # A text-guided model computes its text from the image files (matched and cached by their hashes): stdin is refused
    # in fuse's own words; a training-free model needs no text and fuses from stdin.
    result = run_fusekit("fuse", "-", VI, "--task", "ivf", "--model", "compact", "-o", tmp_path / "y.png", input=IR.read_bytes())
    stderr = assert_user_error(result, "fuse", 1, "stdin")
    assert "describe" not in stderr and not (tmp_path / "y.png").exists()
    result = run_fusekit("fuse", "-", VI, "--task", "ivf", "--model", "gff", "-o", tmp_path / "z.png", input=IR.read_bytes())
    assert result.returncode == 0 and (tmp_path / "z.png").stat().st_size > 0, result.stderr.decode()


def test_misspelt_name_suggests_only_listed_names():
    from fusekit.errors import UsageError
    from fusekit.registry import Registry

    registry = Registry("thing")
    registry.add("alpha", 1, aliases=("alphax",))
    with pytest.raises(UsageError) as error:
        registry.canonical("alphaxx")
    assert "'alpha'" in str(error.value) and "alphax'" not in str(error.value)


# ------------------------------------------------------------------------------------ 5. outputs that look like files


@pytest.mark.parametrize("command, output", [("fuse", "out.png"), ("describe", "all.json")])
def test_many_items_refuse_an_output_that_looks_like_a_file(tmp_path, command, output):
    sources = IR.parent.parent
    options = ["--model", "gff"] if command == "fuse" else ["--no-cache"]
    result = run_fusekit(command, sources / "ir", sources / "vi", "--task", "ivf", *options, "-o", tmp_path / output)
    assert_user_error(result, command, code=2, contains="looks like a file")
    assert not (tmp_path / output).exists()


def test_describe_many_pairs_into_one_jsonl_file(tmp_path):
    folders = {role: tmp_path / role for role in ("ir", "vi")}
    names = ["00028N", "00040N"]
    for role in folders:
        folders[role].mkdir()
    for name in names:
        for role, source in zip(folders, pair_paths("IVF", "MSRS", name)):
            (folders[role] / source.name).write_bytes(source.read_bytes())
    out = tmp_path / "all.jsonl"
    result = run_fusekit("describe", folders["ir"], folders["vi"], "--task", "ivf", "--no-cache", "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    documents = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(document["name"] for document in documents) == names


# ------------------------------------------------------------------------------------------------ 8. tiny images


@pytest.mark.parametrize("size", [1, 2])
def test_tiny_pairs_fuse_and_describe_without_numpy_warnings(tmp_path, size):
    from fusekit.io.images import write_image

    rng = np.random.default_rng(size)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    write_image(a, rng.integers(0, 256, (size, size), dtype=np.uint8))
    write_image(b, rng.integers(0, 256, (size, size), dtype=np.uint8))
    fused = run_fusekit("fuse", a, b, "--task", "ivf", "-o", tmp_path / "f.png")
    described = run_fusekit("describe", a, b, "--task", "ivf", "--no-cache", "-o", tmp_path / "d.json")
    for result in (fused, described):
        stderr = result.stderr.decode()
        assert "Warning" not in stderr and "Mean of empty slice" not in stderr, stderr
        assert result.returncode == 0 or "error:" in stderr, stderr


def test_metrics_of_a_1x1_triple_says_too_small(tmp_path):
    from fusekit.io.images import write_image

    for name in ("f", "a", "b"):
        write_image(tmp_path / f"{name}.png", np.full((1, 1), 100, np.uint8))
    result = run_fusekit("metrics", tmp_path / "f.png", tmp_path / "a.png", tmp_path / "b.png", "--metrics", "VIF")
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "internal error" not in stderr and "too small" in stderr, stderr


def test_a_missing_model_folder_is_named_once(tmp_path):
    result = run_fusekit("describe", IR, "--task", "ivf", "--backend", "blip2", "--model-path", tmp_path / "absent",
                         "--no-cache", "-o", tmp_path / "d.json")
    stderr = assert_user_error(result, "describe", contains="model folder")
    assert stderr.count("model folder") == 1 and "model model" not in stderr, stderr
