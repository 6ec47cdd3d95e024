"""`fusekit metrics` through the real command line: documented JSON structure and values on a golden triple,
folders, manifests, formats, undefined values, bad items, sharding and user errors."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil

import numpy as np
import pytest

from conftest import DATA, GOLDEN, run_fusekit
from fusekit.io.images import read_image, write_image

FUSED = GOLDEN / "metrics" / "fused"
ROWS = json.loads((GOLDEN / "metrics" / "dev_reference.json").read_text())["rows"]
EVALUATOR = ["EN", "SD", "SF", "AG", "MI", "MSE", "CC", "PSNR", "SCD", "VIF", "Qabf", "SSIM"]


def golden_row(name: str, fusion: str) -> dict:
    return next(row for row in ROWS if row["name"] == name and row["fusion"] == fusion)


def triple(row: dict) -> list[str]:
    return [str(FUSED / row["f"]), str(DATA / row["a"]), str(DATA / row["b"])]


def close(value, reference) -> bool:
    return abs(value - reference) <= 1e-4 * max(1.0, abs(reference))


@pytest.fixture(scope="module")
def small_folders(tmp_path_factory):
    """Three folders of 96x128 crops of two golden triples (small, so the CLI runs stay fast)."""
    root = tmp_path_factory.mktemp("metrics")
    for role in ("fused", "a", "b"):
        (root / role).mkdir()
    for row in (golden_row("00040N", "mean"), golden_row("Lamp", "max")):
        for role, path in zip(("fused", "a", "b"), triple(row)):
            write_image(root / role / f"{row['name']}.png", read_image(path)[:96, :128])
    return root


def test_json_on_a_golden_triple_has_the_documented_structure_and_values():
    row = golden_row("00040N", "mean")
    result = run_fusekit("metrics", *triple(row), "--json")
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert document["schema"] == "fusekit.metrics/1.0"
    assert document["convention"] == "evaluator"
    assert isinstance(document["version"], str) and document["version"]
    assert document["metrics"] == EVALUATOR
    assert len(document["rows"]) == 1
    out = document["rows"][0]
    assert (out["fused"], out["a"], out["b"]) == tuple(triple(row))
    for name in EVALUATOR:
        reference = row["metrics"]["VIFF" if name == "VIF" else name]
        assert close(out[name], reference), (name, out[name], reference)
        assert document["mean"][name] == pytest.approx(out[name])
    assert document["better"]["MSE"] == "lower" and document["better"]["VIF"] == "higher"
    assert document["failed"] == []
    assert result.stderr.decode() == ""


def test_undefined_value_is_null_with_a_warning():
    row = golden_row("Lamp", "max")  # F = max(A, B): the reference's SCD is NaN
    assert math.isnan(row["metrics"]["SCD"])
    result = run_fusekit("metrics", *triple(row), "--json", "--metrics", "SCD,EN")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["rows"][0]["SCD"] is None
    assert document["mean"]["SCD"] is None
    assert close(document["rows"][0]["EN"], row["metrics"]["EN"])
    stderr = result.stderr.decode()
    assert "fusekit metrics: warning:" in stderr and "SCD" in stderr and "null" in stderr


def test_vifb_convention_and_aliases():
    row = golden_row("00040N", "mean")
    vifb = next(r for r in json.loads((GOLDEN / "metrics" / "dev_vifb_reference.json").read_text())["rows"]
                if r["name"] == "00040N" and r["fusion"] == "mean")
    result = run_fusekit("metrics", *triple(row), "--convention", "vifb", "--metrics", "qcv,SF,entropy", "--json")
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert document["convention"] == "vifb"
    assert document["metrics"] == ["Qcv", "SF", "EN"]
    for name in document["metrics"]:
        assert close(document["rows"][0][name], vifb["metrics"][name])
    assert document["better"]["Qcv"] == "lower"


def test_folders_tsv_when_piped_and_csv(small_folders):
    root = small_folders
    result = run_fusekit("metrics", "--fused", root / "fused", "--a", root / "a", "--b", root / "b", "--metrics", "EN,SSIM,VIFF")
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert lines[0].split("\t") == ["name", "fused", "a", "b", "EN", "SSIM", "VIF"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["00040N", "Lamp"]
    result = run_fusekit("metrics", root / "fused", root / "a", root / "b", "--csv", "--metrics", "EN,SCD")
    table = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    assert [r["name"] for r in table] == ["00040N", "Lamp"]
    assert float(table[0]["EN"]) > 0
    assert table[1]["SCD"] == ""  # undefined: empty field, never a number


def test_size_mismatch_is_a_bad_item_and_the_rest_still_run(small_folders, tmp_path):
    for role in ("fused", "a", "b"):
        shutil.copytree(small_folders / role, tmp_path / role)
    write_image(tmp_path / "a" / "Lamp.png", np.zeros((50, 60), dtype=np.uint8))
    out = tmp_path / "m.json"
    summary = tmp_path / "summary.json"
    result = run_fusekit("metrics", "--fused", tmp_path / "fused", "--a", tmp_path / "a", "--b", tmp_path / "b",
                         "--metrics", "EN,MSE", "-o", out, "--summary", summary)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "Lamp" in stderr and "size mismatch" in stderr and "Traceback" not in stderr
    document = json.loads(out.read_text())  # -o FILE.json: JSON from the suffix
    assert [r["name"] for r in document["rows"]] == ["00040N"]
    assert document["failed"][0]["name"] == "Lamp"
    assert json.loads(summary.read_text())["failed"] == 1


def test_manifest_and_shards(small_folders, tmp_path):
    manifest = tmp_path / "triples.jsonl"
    manifest.write_text("".join(
        json.dumps({"name": stem, "fused": str(small_folders / "fused" / f"{stem}.png"),
                    "a": str(small_folders / "a" / f"{stem}.png"), "b": str(small_folders / "b" / f"{stem}.png")}) + "\n"
        for stem in ("00040N", "Lamp")))
    names = []
    for k in (0, 1):
        result = run_fusekit("metrics", "--manifest", manifest, "--metrics", "EN", "--json", "--shard", f"{k}/2")
        assert result.returncode == 0, result.stderr.decode()
        names += [r["name"] for r in json.loads(result.stdout)["rows"]]
    assert sorted(names) == ["00040N", "Lamp"]


def test_no_reference_metrics_need_only_the_fused_image(small_folders):
    result = run_fusekit("metrics", small_folders / "fused" / "Lamp.png", "--metrics", "EN,SD", "--json")
    assert result.returncode == 0, result.stderr.decode()
    row = json.loads(result.stdout)["rows"][0]
    assert set(row) == {"name", "fused", "EN", "SD"}


def test_user_errors(capsys):
    """In-process through the same entry point as the console script (the JSON test above covers the subprocess)."""
    from fusekit.cli import main

    def run(*args: str) -> tuple[int, str]:
        code = main(["metrics", *map(str, args)])
        return code, capsys.readouterr().err

    row = golden_row("00040N", "mean")
    code, stderr = run(*triple(row), "--metrics", "EN,Qbaf")
    assert code == 2 and "fusekit metrics: error: unknown metric 'Qbaf' (did you mean 'Qabf'?" in stderr
    code, stderr = run(*triple(row), "--metrics", "Qcv")
    assert code == 2 and "--convention vifb" in stderr
    code, stderr = run(*triple(row), "--convention", "matlab")
    assert code == 2 and "unknown metric convention 'matlab'" in stderr
    code, stderr = run(*triple(row)[:2])
    assert code == 2 and "expected 3 paths" in stderr
    code, stderr = run(*triple(row)[:2], "/nonexistent/b.png", "--metrics", "EN,MSE")
    assert code == 1 and "image not found: /nonexistent/b.png" in stderr and "Traceback" not in stderr
    code, stderr = run(*triple(row), "-o", triple(row)[1])
    assert code == 1 and "also an input" in stderr


def test_table_on_a_terminal(small_folders, capsys, monkeypatch):
    """stdout a terminal: a rich table with the direction of each metric and a mean row."""
    import sys

    from fusekit.cli import main

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "160")
    code = main(["metrics", str(small_folders / "fused"), str(small_folders / "a"), str(small_folders / "b"), "--metrics", "EN,MSE"])
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert code == 0
    assert "EN ↑" in out and "MSE ↓" in out and "evaluator" in out
    assert "00040N" in out and "Lamp" in out and "mean" in out


def test_list_shows_every_metric_with_its_direction():
    result = run_fusekit("metrics", "--list", "--json")
    listing = json.loads(result.stdout)
    assert listing["metrics"]["Qcv"]["better"] == "lower"
    assert set(listing["metrics"]["Qcv"]["definitions"]) == {"vifb"}
    assert "VIFF" in listing["metrics"]["VIF"]["aliases"]
    assert listing["conventions"]["evaluator"]["metrics"] == EVALUATOR
