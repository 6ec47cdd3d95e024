"""The versioned file formats: round trips, kind checks and version checks."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import pair_paths
from fusekit.errors import FusekitError
from fusekit.io import formats


def _descriptions(task="ivf"):
    a, b = pair_paths("IVF", "MSRS", "00040N")
    images = [
        {"path": str(a), "sha256": formats.sha256_file(a), "role": "a", "texts": {"caption": "a hot person", "levels": {"detail": "d", "structure": "s", "semantic": "m"}}},
        {"path": str(b), "sha256": formats.sha256_file(b), "role": "b", "texts": {"caption": "a street"}},
    ]
    return formats.new_descriptions(task, ["stats"], {"stats": "fusekit-stats"}, images)


def test_descriptions_round_trip(tmp_path):
    document = _descriptions()
    path = tmp_path / "d.json"
    formats.write_json(path, document)
    assert formats.read_descriptions(path) == document
    assert document["schema"] == "fusekit.descriptions/1.1"


def test_hash_is_the_file_content_hash():
    a, _ = pair_paths("IVF", "MSRS", "00040N")
    assert formats.sha256_file(a) == "65292af10226f99bfddf91adee674f9030695a57485580a657b9045d6821b4f4"


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(task="xyz"), "task must be"),
    (lambda d: d.update(images=[]), "no images"),
    (lambda d: d["images"][0].pop("sha256"), "lacks 'sha256'"),
    (lambda d: d["images"][0].update(role="c"), "role must be"),
    (lambda d: d["images"][0]["texts"].update(levels={"colour": "x"}), "levels must map"),
])
def test_invalid_descriptions_are_rejected(tmp_path, mutate, message):
    document = _descriptions()
    mutate(document)
    path = tmp_path / "d.json"
    path.write_text(json.dumps(document))
    with pytest.raises(FusekitError, match=message):
        formats.read_descriptions(path)


def test_wrong_kind_and_newer_major_version_are_explained(tmp_path):
    metrics = tmp_path / "m.json"
    formats.write_json(metrics, formats.new_metrics_document("evaluator", ["EN"], [], {}))
    with pytest.raises(FusekitError, match="is a fusekit metrics JSON, not a descriptions JSON"):
        formats.read_descriptions(metrics)
    newer = _descriptions()
    newer["schema"] = "fusekit.descriptions/2.0"
    path = tmp_path / "new.json"
    path.write_text(json.dumps(newer))
    with pytest.raises(FusekitError, match="newer than this fusekit"):
        formats.read_descriptions(path)
    older_minor = _descriptions()
    older_minor["schema"] = "fusekit.descriptions/1.7"
    path.write_text(json.dumps(older_minor))
    assert formats.read_descriptions(path)["task"] == "ivf"
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(FusekitError, match="not valid JSON"):
        formats.read_descriptions(tmp_path / "junk.json")


def test_safetensors_round_trip_and_checks(tmp_path):
    path = tmp_path / "t.safetensors"
    text = torch.randn(12, 768)
    formats.write_safetensors(path, "text-features", {"text": text}, {"encoder": "offline", "dim": 768})
    tensors, meta = formats.read_text_features(path)
    assert torch.equal(tensors["text"], text)
    assert meta["encoder"] == "offline" and meta["dim"] == "768" and meta["schema"] == "fusekit.text-features/1.0"
    with pytest.raises(FusekitError, match="is a fusekit text-features file, not a checkpoint"):
        formats.read_checkpoint(path)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(FusekitError, match="truncated"):
        formats.read_text_features(tmp_path / "cut.safetensors")
    formats.write_safetensors(path, "text-features", {"other": text}, {})
    with pytest.raises(FusekitError, match="no 'text' tensor"):
        formats.read_text_features(path)
