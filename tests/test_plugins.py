"""A third-party package adds a fusion model, a describer, a text encoder and a metric through entry points
(tests/plugin_package.py, written into the test's temporary folder), and the real CLI lists and runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import pair_paths, run_fusekit
from plugin_package import CAPTION, DISTRIBUTION, write_plugin

from fusekit.io.images import read_image, to_grey

A, B = pair_paths("IVF", "MSRS", "00040N")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    return {"PYTHONPATH": str(write_plugin(tmp_path_factory.mktemp("plugin")))}


def test_plugin_model_is_listed_and_fuses(tmp_path, plugin_env):
    listed = run_fusekit("models", "--json", env=plugin_env)
    assert listed.returncode == 0, listed.stderr.decode()
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["demo-mean"]["kind"] == "training-free" and rows["demo-mean"]["tasks"] == ["ivf", "mif"]
    assert "gff" in rows and "film" in rows
    out = tmp_path / "fused.png"
    result = run_fusekit("fuse", A, B, "--task", "ivf", "--model", "demo-mean", "--grey", "-o", out, env=plugin_env)
    assert result.returncode == 0, result.stderr.decode()
    # The runner fuses the rounded BT.601 luma of each source; the mean of two 8-bit levels is exact to ½, so the
    # written level is within 1 of it (rounding of the .5 cases).
    expected = (to_grey(read_image(A)).astype(np.float64) + to_grey(read_image(B))) / 2
    fused = read_image(out).astype(np.float64)
    assert fused.shape == expected.shape and np.abs(fused - expected).max() <= 0.5 + 1e-9


def test_plugin_model_name_gets_a_suggestion(plugin_env):
    result = run_fusekit("fuse", A, B, "--task", "ivf", "--model", "demo-maen", "-o", "-", env=plugin_env)
    assert result.returncode == 2 and "did you mean 'demo-mean'?" in result.stderr.decode()


def test_plugin_describer_is_listed_and_runs_in_the_pipeline(tmp_path, plugin_env):
    listed = run_fusekit("describe", "--list", env=plugin_env)
    assert listed.returncode == 0, listed.stderr.decode()
    rows = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.decode().splitlines()[1:]}
    assert rows["demo-words"][2:4] == ["demo/words-1", DISTRIBUTION] and rows["stats"][3] == "fusekit"
    described = run_fusekit("describe", A, B, "--task", "ivf", "--backend", "demo-words,stats", "--no-cache", env=plugin_env)
    assert described.returncode == 0, described.stderr.decode()
    document = json.loads(described.stdout)
    assert document["backends"] == ["stats", "demo-words"]  # plugins run after the image backends
    for image, path in zip(document["images"], (A, B)):
        assert image["texts"]["caption"] == CAPTION  # replaces the stats caption, as a later backend does
        assert image["texts"]["demo_mean"] == pytest.approx(float(np.mean(read_image(path))), rel=1e-6)
        assert image["texts"]["paragraph"]  # from stats
    descriptions = tmp_path / "pair.json"
    descriptions.write_bytes(described.stdout)
    encoded = run_fusekit("encode-text", descriptions, "--encoder", "demo-ones", "-o", tmp_path / "t.safetensors", env=plugin_env)
    assert encoded.returncode == 0, encoded.stderr.decode()
    from fusekit.io.formats import read_text_features

    tensors, metadata = read_text_features(tmp_path / "t.safetensors")
    assert metadata["encoder"] == "demo-ones" and metadata["dim"] == "4" and tensors["text"].shape[1] == 4


def test_plugin_metric_is_computed(tmp_path, plugin_env):
    result = run_fusekit("metrics", A, A, B, "--metrics", "EN,DemoMean", "--json", env=plugin_env)
    assert result.returncode == 0, result.stderr.decode()
    [row] = json.loads(result.stdout)["rows"]
    assert row["DemoMean"] == pytest.approx(float(np.mean(to_grey(read_image(A)))) / 255.0, rel=1e-6)
