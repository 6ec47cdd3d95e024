"""Model text encoders (BLIP-2 Q-Former, CLIP text, any Hugging Face encoder) and the CLIP image encoder through the
real CLI, from tiny models saved with save_pretrained; their model-type checks and missing-weights errors."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import DATA, assert_user_error, pair_paths, run_fusekit
from tiny_models import tiny_models  # noqa: F401  (session fixture)

PAIR = pair_paths("MEF", "MEFB", "Lamp")


@pytest.fixture(scope="module")
def descriptions(tmp_path_factory):
    out = tmp_path_factory.mktemp("descriptions") / "pair.json"
    result = run_fusekit("describe", *PAIR, "--task", "mef", "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    return out


def test_blip2_qformer_text_features(tiny_models, descriptions, tmp_path):  # noqa: F811
    from fusekit.io.formats import read_text_features
    from fusekit.guidance.text import TextOptions, encode_descriptions

    out = tmp_path / "blip2.safetensors"
    result = run_fusekit("encode-text", descriptions, "-o", out, "--encoder", "blip2", "--model-path", tiny_models["blip2-text"], "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    tensors, metadata = read_text_features(out)
    assert metadata["encoder"] == "blip2" and metadata["encoder_model"] == str(tiny_models["blip2-text"])
    assert metadata["dim"] == "32"  # the tiny Q-Former's hidden size (768 for the real one)
    assert tensors["text"].shape[1] == 32
    assert torch.equal(tensors["text"], torch.cat([tensors["text_a"], tensors["text_b"]]))
    assert {"text_detail", "text_structure", "text_semantic"} <= set(tensors)
    # Token count = the BERT tokenizer's, capped by the Q-Former's 64 positions; starts with [CLS].
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["blip2-text"])
    document = json.loads(descriptions.read_text())
    expected = len(tokenizer(document["images"][0]["texts"]["paragraph"], truncation=True, max_length=64)["input_ids"])
    assert tensors["text_a"].shape[0] == expected
    # --projected: the 256-d (here 16-d) projected token states, L2-normalised per token.
    projected, meta = encode_descriptions(document, "blip2", TextOptions(model_path=str(tiny_models["blip2-text"]), device="cpu", projected=True))
    assert projected["text"].shape[1] == 16 and meta["dim"] == "16"
    assert torch.allclose(projected["text"].norm(dim=1), torch.ones(projected["text"].shape[0]), atol=1e-4)


def test_clip_text_features(tiny_models, descriptions, tmp_path):  # noqa: F811
    from fusekit.io.formats import read_text_features

    out = tmp_path / "clip.safetensors"
    result = run_fusekit("encode-text", descriptions, "-o", out, "--encoder", "clip", "--model-path", tiny_models["clip"], "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    tensors, metadata = read_text_features(out)
    assert metadata["encoder"] == "clip" and metadata["dim"] == "32"
    assert tensors["text_a"].shape == (16, 32)  # cut at CLIP's position limit (16 here, 77 for the real one)


def test_clip_image_embeddings_pair_and_batch(tiny_models, tmp_path):  # noqa: F811
    from fusekit.io.formats import read_image_features, sha256_file
    from fusekit.guidance.vision import encode_images

    out = tmp_path / "pair.safetensors"
    result = run_fusekit("encode-image", *PAIR, "-o", out, "--model-path", tiny_models["clip"], "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    tensors, metadata = read_image_features(out)
    assert set(tensors) == {"image_embed_a", "image_embed_b"}
    assert tensors["image_embed_a"].shape == (24,) and metadata["dim"] == "24"
    assert metadata["encoder"] == "clip" and metadata["image_sha256_a"] == sha256_file(PAIR[0])
    # The Python API gives the same numbers.
    again = encode_images([str(p) for p in PAIR], model_path=str(tiny_models["clip"]), device="cpu")
    assert torch.allclose(again["image_embed_b"], tensors["image_embed_b"], atol=1e-6)
    assert not torch.allclose(tensors["image_embed_a"], tensors["image_embed_b"])

    base = DATA / "MIF" / "Harvard"
    result = run_fusekit("encode-image", base / "mri", base / "other", "-o", tmp_path / "many", "--shard", "0/8",
                         "--model-path", tiny_models["clip"], "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    names = sorted(p.stem for p in (base / "mri").glob("*.png"))[0::8]
    assert sorted(p.stem for p in (tmp_path / "many").glob("*.safetensors")) == names


def test_missing_text_and_image_weights(tmp_path, descriptions):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = run_fusekit("encode-text", descriptions, "-o", tmp_path / "f.safetensors", "--encoder", "blip2", "--device", "cpu", env=env)
    assert_user_error(result, "encode-text", 1, "'Salesforce/blip2-itm-vit-g' is not in the Hugging Face cache")
    result = run_fusekit("encode-image", *PAIR, "-o", tmp_path / "g.safetensors", "--device", "cpu", env=env)
    assert_user_error(result, "encode-image", 1, "'openai/clip-vit-base-patch32' is not in the Hugging Face cache")
    assert not (tmp_path / "f.safetensors").exists() and not (tmp_path / "g.safetensors").exists()


def test_hf_encoder_token_states_and_pooled(tiny_models, descriptions, tmp_path):  # noqa: F811
    from fusekit.io.formats import read_text_features

    for flags, rows in (((), None), (("--pooled",), 1)):
        out = tmp_path / f"hf{len(flags)}.safetensors"
        result = run_fusekit("encode-text", descriptions, "-o", out, "--encoder", "hf", "--model-path", tiny_models["bert"],
                             "--device", "cpu", *flags)
        assert result.returncode == 0, result.stderr.decode()
        tensors, metadata = read_text_features(out)
        assert metadata["encoder"] == "hf" and metadata["dim"] == "32"
        if rows:
            assert tensors["text_a"].shape == (1, 32) and tensors["text"].shape == (2, 32)
        else:
            assert tensors["text_a"].shape[0] > 1
            states = tensors["text_a"]
    pooled, _ = read_text_features(tmp_path / "hf1.safetensors")
    assert torch.allclose(pooled["text_a"][0], states.mean(dim=0), atol=1e-5)  # the mean of the token states
    # A model that does not encode text alone (BLIP-2 wants pixels too) is one line, not a traceback.
    result = run_fusekit("encode-text", descriptions, "-o", tmp_path / "x.safetensors", "--encoder", "hf",
                         "--model-path", tiny_models["blip2-text"], "--device", "cpu")
    assert_user_error(result, "encode-text", 1, "does not encode text alone")


@pytest.mark.parametrize(("command", "encoder", "folder", "found"), [
    ("encode-text", "blip2", "clip", "clip"), ("encode-text", "clip", "bert", "bert"),
    ("encode-image", None, "blip2-text", "blip-2")])
def test_encoder_model_type_is_checked(tiny_models, descriptions, tmp_path, command, encoder, folder, found):  # noqa: F811
    source = [descriptions, "--encoder", encoder] if command == "encode-text" else list(PAIR)
    result = run_fusekit(command, *source, "-o", tmp_path / "f.safetensors", "--model-path", tiny_models[folder], "--device", "cpu")
    assert_user_error(result, command, 1, f"holds a '{found}' model, not a")
    assert not (tmp_path / "f.safetensors").exists()
