"""TeSG's Semantic Information Generator: keyword removal, Δ and union logic, the diffusion masks and text
semantics from a tiny Stable Diffusion (UNet, VAE, CLIP text encoder, tokenizer built from configs and saved as a
diffusers folder), masks from files, and the `fusekit semantics` command end to end on a real DEV-set pair."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import assert_user_error, pair_paths, run_fusekit

from fusekit.errors import FusekitError
from fusekit.io.images import write_image
from fusekit.guidance.semantics import (DiffusionSemantics, SIGConfig, binarise, generate_semantics, load_grey,
                                           read_semantics, remove_keyword, union)

PAIR = pair_paths("IVF", "MSRS", "00103D")
TEXT_DIM = 16
TINY_SIG = SIGConfig(resolution=32, samples=2)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    """A diffusers Stable Diffusion folder with tiny random parts (no download)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny-sd")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in map(chr, range(ord("a"), ord("z") + 1)):
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=24).save_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM, attention_head_dim=2, norm_num_groups=4,
    ).save_pretrained(root / "unet")
    AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4,
        layers_per_block=1,
    ).save_pretrained(root / "vae")
    CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=TEXT_DIM, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=24, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )).save_pretrained(root / "text_encoder")
    DDIMScheduler().save_pretrained(root / "scheduler")
    return root


@pytest.fixture(scope="module")
def diffusion(tiny_sd):
    return DiffusionSemantics.from_pretrained(tiny_sd, TINY_SIG)


def test_keyword_removal():
    assert remove_keyword("a man walking past a parked car") == ("a walking past a parked car", "man")
    assert remove_keyword("Two cars and a car on the road") == ("Two and a on the road", "car")
    assert remove_keyword("buses in the rain", ("bus",)) == ("in the rain", "bus")
    assert remove_keyword("a street light over an empty road") == ("a over an empty road", "street light")
    assert remove_keyword("an empty road at night") == ("an empty road at night", "")
    assert remove_keyword("a red bus", ("bus",)) == ("a red", "bus")
    assert remove_keyword("a carpet in a room") == ("a carpet in a room", "")  # whole words only


def test_binarise_and_union():
    difference = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    assert binarise(difference, 0.5).tolist() == [[0, 0], [0, 1]]
    assert binarise(difference, 0.2).tolist() == [[0, 1], [1, 1]]
    assert binarise(torch.full((3, 2), 7.0), 0.5).tolist() == [[0, 0]] * 3  # flat map: no object
    m_vis = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    m_ir = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert union(m_vis, m_ir).tolist() == [[1, 0], [0, 1]]
    assert torch.equal(union(m_vis, m_vis), m_vis)
    with pytest.raises(FusekitError, match="different sizes"):
        union(m_vis, torch.zeros(3, 2))


@pytest.mark.slow
def test_diffusion_masks_are_binary_image_sized_and_united(diffusion):
    image_a, image_b = load_grey(PAIR[0]), load_grey(PAIR[1])
    caption = "a man walking past a parked car"
    tensors, metadata = generate_semantics(*PAIR, caption, diffusion)
    mask = tensors["mask"]
    assert mask.shape == image_a.shape and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and 0 < float(mask.mean()) < 1
    # Eq. 3: the mask is the union of the visible and the infrared image's masks (same captions)
    m_vis = diffusion.mask(image_b, caption, "a walking past a parked car")
    m_ir = diffusion.mask(image_a, caption, "a walking past a parked car")
    assert torch.equal(mask, torch.maximum(m_vis, m_ir))
    assert not torch.equal(m_vis, m_ir)
    # text semantics: the text encoder's last hidden state of T, [max_length, D]
    assert tensors["text_semantics"].shape == (24, TEXT_DIM)
    torch.testing.assert_close(tensors["text_semantics"], diffusion.encode_text([caption])[0])
    assert metadata["keyword"] == "man" and metadata["caption"] == caption and metadata["mask_source"] == "diffusion"
    # no key object in the caption: an empty mask
    empty, meta = generate_semantics(*PAIR, "an empty road", diffusion)
    assert float(empty["mask"].sum()) == 0 and meta["keyword"] == ""


def test_masks_from_files(tmp_path, diffusion):
    height, width = load_grey(PAIR[0]).shape
    first, second = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
    first[10:20, 30:40] = 255
    second[15:25, 35:50] = 1
    write_image(tmp_path / "m1.png", first)
    write_image(tmp_path / "m2.png", second)
    tensors, metadata = generate_semantics(*PAIR, "a car", diffusion, [tmp_path / "m1.png", tmp_path / "m2.png"])
    assert torch.equal(tensors["mask"], torch.from_numpy(((first > 0) | (second > 0)).astype(np.float32)))
    assert metadata["mask_source"] == "files"
    write_image(tmp_path / "small.png", first[:-1])
    with pytest.raises(FusekitError, match="same size"):
        generate_semantics(*PAIR, "a car", diffusion, [tmp_path / "small.png"])


def test_missing_diffusers_or_weights_is_one_clear_error(monkeypatch, tmp_path, tiny_sd):
    with pytest.raises(FusekitError, match="not available"):
        DiffusionSemantics.from_pretrained(tmp_path / "nothing-here")
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(FusekitError, match="needs diffusers"):
        DiffusionSemantics.from_pretrained(tiny_sd)
    # masks from files need only the text encoder: no diffusers, no UNet
    text_only = DiffusionSemantics.from_pretrained(tiny_sd, TINY_SIG, masks=False)
    assert not text_only.makes_masks
    height, width = load_grey(PAIR[0]).shape
    seg = np.zeros((height, width), np.uint8)
    seg[:3, :4] = 9
    write_image(tmp_path / "seg.png", seg)
    tensors, _ = generate_semantics(*PAIR, "a car", text_only, [tmp_path / "seg.png"])
    assert float(tensors["mask"].sum()) == 12 and tensors["text_semantics"].shape == (24, TEXT_DIM)
    with pytest.raises(ValueError, match="without the UNet"):
        generate_semantics(*PAIR, "a car", text_only)


def test_semantics_command_end_to_end(tmp_path, tiny_sd):
    # the caption of the visible image (role b) comes from a descriptions JSON, e.g. `describe --backend blip2`
    document = {"schema": "fusekit.descriptions/1.0", "task": "ivf", "backends": ["blip2"], "models": {}, "images": [
        {"path": str(PAIR[0]), "sha256": "x", "role": "a", "texts": {"caption": "a bright blob"}},
        {"path": str(PAIR[1]), "sha256": "y", "role": "b", "texts": {"caption": "a bike near a car"}}]}
    out = tmp_path / "pair.safetensors"
    result = run_fusekit("semantics", *map(str, PAIR), "--task", "ivf", "--descriptions", "-", "--diffusion-model",
                         str(tiny_sd), "--resolution", "32", "--samples", "1", "--device", "cpu", "-o", str(out),
                         input=json.dumps(document).encode())
    assert result.returncode == 0, result.stderr.decode()
    tensors, metadata = read_semantics(out)
    assert tensors["mask"].shape == load_grey(PAIR[0]).shape
    assert (metadata["keyword"], metadata["caption"]) == ("bike", "a bike near a car")
    assert metadata["schema"].startswith("fusekit.semantics/1.")
    # missing weights: one line, no traceback
    result = run_fusekit("semantics", *map(str, PAIR), "--caption", "a car", "--diffusion-model",
                         str(tmp_path / "no-model"), "-o", str(tmp_path / "x.safetensors"))
    assert_user_error(result, "semantics", 1, "not available")
    assert not (tmp_path / "x.safetensors").exists()


def test_caption_from_a_describe_backend(tmp_path, tiny_sd, capsys):
    """Without --caption/--descriptions the visible image is captioned by a describe backend (offline stats here)."""
    from fusekit.cli import main
    from fusekit.guidance.describe import describe_pair

    out = tmp_path / "pair.safetensors"
    code = main(["semantics", *map(str, PAIR), "--captioner", "stats", "--diffusion-model", str(tiny_sd),
                 "--resolution", "32", "--samples", "1", "--device", "cpu", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    expected = describe_pair(str(PAIR[1]), None, "ivf")["images"][0]["texts"]["caption"]
    assert read_semantics(out)[1]["caption"] == expected


def test_manifest_batch_keeps_going_past_a_bad_item(tmp_path, tiny_sd, capsys):
    from fusekit.cli import main

    height, width = load_grey(PAIR[0]).shape
    seg = np.zeros((height, width), np.uint8)
    seg[5:9, 7:12] = 255
    write_image(tmp_path / "seg.png", seg)
    entries = [{"name": "good", "a": str(PAIR[0]), "b": str(PAIR[1]), "caption": "a car", "mask": "seg.png"},
               {"name": "bad", "a": str(PAIR[0]), "b": str(PAIR[1]), "caption": "a car", "mask": "missing.png"}]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    code = main(["semantics", "--manifest", str(tmp_path / "pairs.jsonl"), "--diffusion-model", str(tiny_sd),
                 "--device", "cpu", "-o", str(tmp_path / "out")])
    assert code == 1
    assert "bad" in capsys.readouterr().err
    tensors, metadata = read_semantics(tmp_path / "out" / "good.safetensors")
    assert torch.equal(tensors["mask"], torch.from_numpy((seg > 0).astype(np.float32)))
    assert metadata["mask_source"] == "files" and metadata["keyword"] == "car"
    assert not (tmp_path / "out" / "bad.safetensors").exists()
