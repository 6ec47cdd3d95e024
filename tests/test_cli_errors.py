"""The foundation's promises through the real CLI: pipes, one-line errors, no partial outputs, skip-existing.

Uses the 256 x 256 Harvard pairs and the default (bundled or training-free) model so every call stays quick.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, assert_user_error, pair_paths, run_fusekit

MRI, OTHER = pair_paths("MIF", "Harvard", "CT_2013")


def _files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_describe_encode_fuse_metrics_through_pipes(tmp_path):
    described = run_fusekit("describe", MRI, OTHER, "--task", "mif")
    assert described.returncode == 0, described.stderr.decode()
    assert json.loads(described.stdout)["schema"].startswith("fusekit.descriptions/")
    encoded = run_fusekit("encode-text", "-", "-o", "-", input=described.stdout)
    assert encoded.returncode == 0, encoded.stderr.decode()
    (tmp_path / "pair.safetensors").write_bytes(encoded.stdout)
    fused = run_fusekit("fuse", MRI, OTHER, "--task", "mif", "--text", tmp_path / "pair.safetensors", "-o", "-")
    assert fused.returncode == 0, fused.stderr.decode()
    image = np.asarray(Image.open(io.BytesIO(fused.stdout)))
    assert image.shape[:2] == (256, 256)
    (tmp_path / "fused.png").write_bytes(fused.stdout)
    scored = run_fusekit("metrics", tmp_path / "fused.png", MRI, OTHER, "--json")
    assert scored.returncode == 0, scored.stderr.decode()
    assert set(json.loads(scored.stdout)["mean"]) >= {"EN", "SD", "VIF", "Qabf"}


def test_missing_input_file(tmp_path):
    out = tmp_path / "out.png"
    result = run_fusekit("fuse", tmp_path / "nope.png", OTHER, "--task", "mif", "-o", out)
    assert_user_error(result, "fuse", 1, "not found")
    assert not out.exists() and _files(tmp_path) == []


def test_truncated_png(tmp_path):
    data = MRI.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "fused.png"
    result = run_fusekit("fuse", cut, OTHER, "--task", "mif", "-o", out)
    assert_user_error(result, "fuse", 1, "truncated")
    assert not out.exists()
    result = run_fusekit("describe", cut, OTHER, "--task", "mif")
    assert_user_error(result, "describe", 1, "truncated")
    assert result.stdout == b""


def test_wrong_kind_of_file(tmp_path):
    metrics_json = tmp_path / "m.json"
    scored = run_fusekit("metrics", MRI, MRI, OTHER, "--json", "--metrics", "EN")
    metrics_json.write_bytes(scored.stdout)
    result = run_fusekit("encode-text", metrics_json, "-o", tmp_path / "t.safetensors")
    assert_user_error(result, "encode-text", 1, "not a descriptions JSON")
    assert not (tmp_path / "t.safetensors").exists()
    result = run_fusekit("fuse", MRI, OTHER, "--task", "mif", "--text", metrics_json, "-o", tmp_path / "f.png")
    assert result.returncode == 1 and "Traceback" not in result.stderr.decode()
    assert not (tmp_path / "f.png").exists()


def test_size_mismatched_pair(tmp_path):
    ir, _ = pair_paths("IVF", "MSRS", "00040N")
    out = tmp_path / "f.png"
    result = run_fusekit("fuse", ir, OTHER, "--task", "mif", "-o", out)
    assert_user_error(result, "fuse", 1, "size")
    assert not out.exists()
    result = run_fusekit("metrics", ir, MRI, OTHER)
    assert result.returncode == 1 and "Traceback" not in result.stderr.decode()


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    result = run_fusekit("fuse", MRI, OTHER, "--task", "mif", "-o", blocker / "fused.png")
    assert_user_error(result, "fuse", 1, "")
    assert blocker.read_text() == "a file where a folder should be"


def test_inputs_are_never_overwritten(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(MRI.read_bytes())
    b.write_bytes(OTHER.read_bytes())
    result = run_fusekit("fuse", a, b, "--task", "mif", "-o", a)
    assert_user_error(result, "fuse", 1, "input")
    assert a.read_bytes() == MRI.read_bytes()


def test_usage_errors_exit_2():
    assert_user_error(run_fusekit("fuse", MRI, OTHER, "--task", "xyz", "-o", "-"), "fuse", 2, "task")
    assert_user_error(run_fusekit("metrics", MRI, OTHER), "metrics", 2, "")


def test_skip_existing_leaves_finished_outputs_alone(tmp_path):
    harvard = DATA / "MIF" / "Harvard"
    out = tmp_path / "fused"
    first = run_fusekit("fuse", harvard / "mri", harvard / "other", "--task", "mif", "-o", out)
    assert first.returncode == 0, first.stderr.decode()
    produced = _files(out)
    assert len(produced) == 10
    marker = out / produced[0]
    os.utime(marker, (1, 1))
    (out / produced[1]).unlink()
    summary = tmp_path / "summary.json"
    second = run_fusekit("fuse", harvard / "mri", harvard / "other", "--task", "mif", "-o", out, "--skip-existing",
                         "--summary", summary)
    assert second.returncode == 0, second.stderr.decode()
    assert marker.stat().st_mtime == 1
    assert _files(out) == produced
    counts = json.loads(summary.read_text())
    assert counts["skipped"] == 9 and counts["processed"] == 1 and counts["failed"] == 0


def test_debug_shows_the_traceback(tmp_path):
    result = run_fusekit("fuse", tmp_path / "nope.png", OTHER, "--task", "mif", "-o", tmp_path / "o.png", "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr.decode()
    result = run_fusekit("fuse", tmp_path / "nope.png", OTHER, "--task", "mif", "-o", tmp_path / "o.png",
                         env={"FUSEKIT_DEBUG": "1"})
    assert "Traceback" in result.stderr.decode()
