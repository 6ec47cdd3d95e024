"""Torch-free start (issue 18): the light commands run without importing torch or transformers, checked from
`python -X importtime` of the real CLI; and the safetensors they write are the bytes the torch writer makes."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from conftest import pair_paths, run_fusekit

HEAVY = ("torch", "transformers")
IVF = pair_paths("IVF", "MSRS", "00040N")
PAIRS = {"gff": ("ivf", IVF), "lp": ("mif", pair_paths("MIF", "Harvard", "CT_2013")),
         "mertens": ("mef", pair_paths("MEF", "MEFB", "Chair")), "focus-map": ("mff", pair_paths("MFF", "MFFW", "mffw_06"))}
HELP_OF = ("describe", "encode-text", "encode-image", "semantics", "fuse", "metrics", "train", "models", "models import")


def heavy_imports(*args: str) -> list[str]:
    """Run `fusekit ARGS` under -X importtime; the heavy packages it imported (it must succeed)."""
    result = run_fusekit(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    imported = {match.group(1).strip() for match in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", result.stderr.decode(), re.M)}
    assert "fusekit.cli" in imported  # the probe itself works
    return sorted(imported & set(HEAVY))


@pytest.fixture(scope="module")
def descriptions(tmp_path_factory) -> str:
    from fusekit.guidance.describe import describe_pair
    from fusekit.io.formats import write_json

    path = tmp_path_factory.mktemp("startup") / "pair.json"
    write_json(path, describe_pair(*IVF, "ivf", backends=("stats",)))
    return str(path)


@pytest.mark.parametrize("model", sorted(PAIRS))
def test_fuse_with_a_training_free_model_starts_without_torch(model, tmp_path):
    task, (a, b) = PAIRS[model]
    assert heavy_imports("fuse", a, b, "--task", task, "--model", model, "-o", tmp_path / "f.png") == []


@pytest.mark.parametrize("args", [("models",), ("models", "--json"), ("describe", "--list"), ("encode-text", "--list"),
                                  ("encode-image", "--list"), ("--help",)], ids=" ".join)
def test_listing_starts_without_torch(args):
    assert heavy_imports(*args) == []


@pytest.mark.parametrize("command", HELP_OF)
def test_help_starts_without_torch(command):
    assert heavy_imports(*command.split(), "--help") == []


def test_describe_encode_metrics_start_without_torch(tmp_path, descriptions):
    a, b = IVF
    assert heavy_imports("describe", a, b, "--task", "ivf", "--backend", "stats", "--no-cache", "-o", tmp_path / "d.json") == []
    assert heavy_imports("encode-text", descriptions, "--encoder", "offline", "-o", tmp_path / "t.safetensors") == []
    assert heavy_imports("metrics", a, a, b) == []


def test_offline_features_written_without_torch_are_the_torch_writers_bytes(tmp_path, descriptions):
    """`encode-text --encoder offline` writes numpy through safetensors.numpy; the same document encoded to torch
    tensors and written through safetensors.torch (what fusekit did before) gives the same bytes."""
    from fusekit.guidance.text import encode_descriptions
    from fusekit.io.formats import write_safetensors

    document = json.loads(open(descriptions).read())
    arrays, metadata = encode_descriptions(document, "offline", as_numpy=True, source=descriptions)
    tensors, torch_metadata = encode_descriptions(document, "offline", source=descriptions)
    assert all(isinstance(value, np.ndarray) for value in arrays.values()) and metadata == torch_metadata
    assert sorted(arrays) == sorted(tensors) == ["text", "text_a", "text_b", "text_detail", "text_semantic", "text_structure"]
    write_safetensors(tmp_path / "numpy.safetensors", "text-features", arrays, metadata)
    write_safetensors(tmp_path / "torch.safetensors", "text-features", tensors, metadata)
    assert (tmp_path / "numpy.safetensors").read_bytes() == (tmp_path / "torch.safetensors").read_bytes()
    assert "torch" in sys.modules  # the comparison really went through the torch writer
