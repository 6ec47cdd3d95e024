"""TGIF (papers/001): shapes at odd sizes, gradients, the text-guidance switch, the paper's defaults.

Tiny configs on real DEV-set crops; text features are a fixed random [1, L, 768] tensor (the model only sees
their shape and values, whatever encoder wrote them).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import pair_paths, run_fusekit
from model_checks import (assert_checkpoint_round_trip, assert_every_parameter_learns, assert_fuse_cli_matches,
                          assert_matches_plain_transcription,
                          grey_crop, grey_tensors, logged_losses, training_pair)

from fusekit.io.formats import read_checkpoint, write_safetensors
from fusekit.models import FUSION_MODELS
from fusekit.models.tgif import TGIF, TGIFConfig
from fusekit.models.losses import LOSSES
from fusekit.app.train.presets import PRESETS

TINY = TGIFConfig(dim=8, heads=2, encoder_blocks=1, decoder_blocks=1, adapter_hidden=16)


def text_tokens(seed: int = 0, tokens: int = 12, dim: int = 768) -> torch.Tensor:
    return torch.randn(1, tokens, dim, generator=torch.Generator().manual_seed(seed))


def tiny(**changes):
    torch.manual_seed(0)
    return TGIF(dataclasses.replace(TINY, **changes)).eval()


def test_paper_defaults_and_registration():
    config = TGIFConfig()
    assert (config.dim, config.heads, config.encoder_blocks, config.decoder_blocks) == (64, 8, 2, 3)
    spec = FUSION_MODELS.get("tgif")
    assert spec.kind == "learned" and spec.guidance == ("text",)
    assert spec.default_loss == "film" and spec.default_loss in LOSSES
    assert PRESETS.get(spec.train_preset).schedule == "step:50:0.5"  # the paper: lr 1e-4 halved every 50 epochs
    model = spec.build(config)
    assert len(model.encoders[0].blocks) == 2 and len(model.encoders[0].guides) == 2 and len(model.decoder) == 3


@pytest.mark.slow
@pytest.mark.parametrize("kv_stride", [4, 1])
def test_forward_at_odd_size_keeps_size(kv_stride):
    a, b = grey_crop("IVF", "MSRS", "00040N", 257, 383)
    with torch.inference_mode():
        fused = tiny(kv_stride=kv_stride)(a, b, text=text_tokens())
    assert fused.shape == (1, 1, 257, 383)
    assert torch.isfinite(fused).all() and fused.min() >= 0 and fused.max() <= 1


@pytest.mark.slow
def test_gradients_reach_every_parameter():
    a, b = grey_crop("MEF", "MEFB", "Chair", 40, 56)
    model = tiny(shared_encoder=False).train()
    batch = {"a": a, "b": b, "text": text_tokens()}
    total, parts = LOSSES.get("film")({"fused": model(a, b, text=batch["text"])}, batch, "mef")
    total.backward()
    assert set(parts) == {"int", "grad", "ssim"}
    assert_every_parameter_learns(model)


def test_text_guides_the_output():
    a, b = grey_crop("IVF", "MSRS", "00040N", 48, 64)
    model = tiny()
    with torch.inference_mode():
        first, second = model(a, b, text=text_tokens(0)), model(a, b, text=text_tokens(1))
    assert (first - second).abs().max() > 1e-6  # small at random init, but the text changes the result


def test_without_text_ablation_drops_adapter_and_cross_attention():
    full, ablated = tiny(), tiny(use_text=False)
    names = [name for name, _ in ablated.named_parameters()]
    assert not any(name.startswith("adapter.") or ".guides." in name for name in names)
    assert any(".guides." in name for name, _ in full.named_parameters())
    a, b = grey_crop("IVF", "MSRS", "00040N", 48, 64)
    with torch.inference_mode():
        without = ablated(a, b)
        assert torch.equal(without, ablated(a, b, text=text_tokens(3)))  # text is ignored
    assert without.shape == a.shape


@pytest.mark.parametrize("modulation,has_gate", [("map", False), ("gate", True)])
def test_modulation_readings(modulation, has_gate):
    model = tiny(modulation=modulation)
    assert any(name.endswith("guides.0.gate.weight") for name, _ in model.named_parameters()) == has_gate
    a, b = grey_crop("IVF", "MSRS", "00040N", 24, 40)
    with torch.inference_mode():
        assert (model(a, b, text=text_tokens(0)) - model(a, b, text=text_tokens(1))).abs().max() > 0
    with pytest.raises(ValueError, match="modulation"):
        tiny(modulation="film")


def test_shared_encoder_switch_and_missing_text():
    shared, separate = tiny(), tiny(shared_encoder=False)
    assert len(shared.encoders) == 1 and len(separate.encoders) == 2
    a, b = grey_crop("IVF", "MSRS", "00040N", 16, 16)
    with pytest.raises(ValueError, match="text features"):
        shared(a, b)


def test_text_of_another_encoder_width():
    """The adapter projects any encoder width (e.g. CLIP text, 512-d)."""
    a, b = grey_crop("MFF", "MFIFB", "savic_03", 24, 40)
    with torch.inference_mode():
        fused = tiny(text_dim=512)(a, b, text=text_tokens(dim=512))
    assert fused.shape == a.shape


def test_save_load_fuse_gives_identical_output(tmp_path):
    paths = pair_paths("MFF", "MFIFB", "savic_03")
    model, text = tiny(), text_tokens(5)
    features = tmp_path / "pair.safetensors"
    write_safetensors(features, "text-features", {"text": text[0]}, {"encoder": "blip2", "dim": "768"})
    weights, expected, _ = assert_checkpoint_round_trip(tmp_path, "tgif", model, "mff", *grey_tensors(paths),
                                                        {"text": text})
    assert_fuse_cli_matches(tmp_path, paths, "mff", "tgif", weights, ["--text", str(features)], expected)


def test_fusekit_train_steps_reduce_the_loss(tmp_path):
    manifest = training_pair(tmp_path, "IVF/MSRS", ("ir", "vi"), "00032N", (200, 300, 64, 96))
    features = tmp_path / "text"
    features.mkdir()
    write_safetensors(features / "00032N.safetensors", "text-features", {"text": text_tokens(7)[0]},
                      {"encoder": "blip2", "dim": "768"})
    tiny_fields = [item for key, value in (("dim", 8), ("heads", 2), ("encoder_blocks", 1), ("decoder_blocks", 1),
                                           ("adapter_hidden", 16)) for item in ("--set", f"{key}={value}")]
    result = run_fusekit("train", "--model", "tgif", "--task", "ivf", "--data", manifest, "--text", str(features),
                         "--out", str(tmp_path / "run"), *tiny_fields, "--batch-size", "1", "--crop", "0",
                         "--resize", "none", "--augment", "none", "--lr", "2e-3", "--max-steps", "8",
                         "--log-every", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    losses = logged_losses(tmp_path / "run")
    assert len(losses) == 8 and losses[-1] < 0.9 * losses[0], losses
    assert json.loads(read_checkpoint(tmp_path / "run" / "model.safetensors")[1]["config"])["dim"] == 8


def test_paper_default_network_matches_its_plain_transcription():
    torch.manual_seed(0)
    model = TGIF(TGIFConfig())
    assert_matches_plain_transcription(model, *grey_crop("IVF", "MSRS", "00040N", 48, 72), {"text": text_tokens(tokens=20)})
