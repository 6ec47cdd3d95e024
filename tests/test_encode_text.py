"""`fusekit encode-text` with the offline encoder: the describe | encode-text pipe on real pairs of all tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, pair_paths, run_fusekit

PAIRS = {
    "ivf": ("IVF", "RoadScene", "FLIR_06570"),
    "mif": ("MIF", "Harvard", "CT_2013"),
    "mef": ("MEF", "MEFB", "Stream"),
    "mff": ("MFF", "MFIFB", "temple"),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEKIT_CACHE", str(tmp_path / "cache"))


def pipe(task, out, *encode_args):
    a, b = pair_paths(*PAIRS[task])
    described = run_fusekit("describe", a, b, "--task", task)
    assert described.returncode == 0, described.stderr.decode()
    encoded = run_fusekit("encode-text", "-o", out, *encode_args, input=described.stdout)
    assert encoded.returncode == 0, encoded.stderr.decode()
    return described.stdout


@pytest.mark.parametrize("task", sorted(PAIRS))
def test_pipe_is_byte_deterministic_and_well_formed(task, tmp_path):
    from fusekit.io.formats import read_text_features, sha256_bytes

    from fusekit.io.formats import write_safetensors
    from fusekit.guidance.text import encode_descriptions

    descriptions = pipe(task, tmp_path / "one.safetensors")
    # Same bytes from a second, independent run (here in-process, so the test stays fast).
    write_safetensors(tmp_path / "two.safetensors", "text-features", *encode_descriptions(json.loads(descriptions)))
    assert (tmp_path / "one.safetensors").read_bytes() == (tmp_path / "two.safetensors").read_bytes()
    tensors, metadata = read_text_features(tmp_path / "one.safetensors")
    a, b = tensors["text_a"], tensors["text_b"]
    assert a.dtype == torch.float32 and a.shape[1] == 768
    assert torch.equal(tensors["text"], torch.cat([a, b]))
    for level in ("detail", "structure", "semantic"):
        assert tensors[f"text_{level}"].ndim == 2 and tensors[f"text_{level}"].shape[1] == 768
    document = json.loads(descriptions)
    assert metadata["encoder"] == "offline" and metadata["dim"] == "768" and metadata["task"] == task
    assert metadata["image_sha256_a"] == document["images"][0]["sha256"]
    assert metadata["image_sha256_b"] == document["images"][1]["sha256"]
    assert metadata["descriptions_sha256"] == sha256_bytes(descriptions)
    assert json.loads(metadata["tokens"]) == {"a": a.shape[0], "b": b.shape[0]}
    # Rows have unit RMS per element, the scale of BLIP-2's layer-normalised token states.
    rms = tensors["text"].pow(2).mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-4)


def test_offline_embeddings_are_fixed_and_word_similarity_follows_spelling():
    from fusekit.guidance.text.offline import embed, token_vector

    first = embed("Bright thermal hotspot in the lower right.")
    assert first.shape == (9, 768)  # start token + 7 words + the full stop
    # The start token's row does not depend on the text.
    assert np.array_equal(first[0], embed("x")[0])
    def cosine(u, v):
        return float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))
    assert cosine(token_vector("hotspots", 768), token_vector("hotspot", 768)) > 0.3
    assert abs(cosine(token_vector("hotspot", 768), token_vector("blurred", 768))) < 0.2
    assert embed("a b c", dim=64, max_tokens=3).shape == (3, 64)


def test_dim_option_and_single_image(tmp_path):
    a, _ = pair_paths(*PAIRS["ivf"])
    described = run_fusekit("describe", a, "--task", "ivf")
    out = tmp_path / "f.safetensors"
    result = run_fusekit("encode-text", "-", "-o", out, "--dim", "256", input=described.stdout)
    assert result.returncode == 0, result.stderr.decode()
    from fusekit.io.formats import read_text_features

    tensors, metadata = read_text_features(out)
    assert tensors["text"].shape[1] == 256 and "text_b" not in tensors and metadata["dim"] == "256"
    assert "image_sha256_b" not in metadata


def test_batch_folder_to_named_files(tmp_path):
    from conftest import DATA

    base = DATA / "MFF" / "MFIFB"
    described = run_fusekit("describe", base / "a", base / "b", "--task", "mff", "-o", tmp_path / "d", "--shard", "0/6")
    assert described.returncode == 0, described.stderr.decode()
    result = run_fusekit("encode-text", tmp_path / "d", "-o", tmp_path / "t")
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(p.stem for p in (tmp_path / "t").glob("*.safetensors")) == sorted(p.stem for p in (tmp_path / "d").glob("*.json"))


def test_json_lines_batch(tmp_path):
    from conftest import DATA

    base = DATA / "MEF" / "MEFB"
    described = run_fusekit("describe", base / "over", base / "under", "--task", "mef", "--shard", "0/4")
    assert described.returncode == 0, described.stderr.decode()
    assert len(described.stdout.decode().splitlines()) >= 2
    result = run_fusekit("encode-text", "-o", tmp_path / "t", input=described.stdout)
    assert result.returncode == 0, result.stderr.decode()
    assert len(list((tmp_path / "t").glob("*.safetensors"))) == len(described.stdout.decode().splitlines())


def test_malformed_json_is_one_line(tmp_path):
    result = run_fusekit("encode-text", "-o", tmp_path / "f.safetensors", input=b'{"schema": ')
    assert_user_error(result, "encode-text", 1, "not valid JSON")
    assert not (tmp_path / "f.safetensors").exists()


def test_wrong_kind_of_json(tmp_path):
    result = run_fusekit("encode-text", "-o", tmp_path / "f.safetensors", input=b'{"schema": "fusekit.metrics/1.0"}')
    assert_user_error(result, "encode-text", 1, "not a descriptions JSON")


def test_empty_text_is_refused(tmp_path):
    a, b = pair_paths(*PAIRS["ivf"])
    document = json.loads(run_fusekit("describe", a, b, "--task", "ivf").stdout)
    document["images"][1]["texts"] = {"paragraph": "   ", "caption": ""}
    result = run_fusekit("encode-text", "-o", tmp_path / "f.safetensors", input=json.dumps(document).encode())
    assert_user_error(result, "encode-text", 1, "role b) has no text")
    result = run_fusekit("encode-text", "-o", tmp_path / "f.safetensors", input=b"")
    assert_user_error(result, "encode-text", 1, "empty")


def test_unknown_encoder(tmp_path):
    result = run_fusekit("encode-text", "-o", tmp_path / "f.safetensors", "--encoder", "ofline", input=b"{}")
    assert_user_error(result, "encode-text", 2, "did you mean 'offline'")


def test_one_pair_into_an_existing_folder(tmp_path):
    a, b = pair_paths(*PAIRS["mff"])
    assert run_fusekit("describe", a, b, "--task", "mff", "-o", tmp_path).returncode == 0
    described = tmp_path / f"{a.stem}.json"
    assert described.is_file()
    result = run_fusekit("encode-text", described, "-o", tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / f"{a.stem}.safetensors").is_file()
