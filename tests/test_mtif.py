"""MTIF (papers/004): shapes at odd sizes, gradients, the ablation switches and the multi-grained loss.

Tiny configs on real DEV-set crops; per-level text features are fixed random [1, L, 768] tensors.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import pair_paths, run_fusekit
from model_checks import (assert_checkpoint_round_trip, assert_every_parameter_learns, assert_fuse_cli_matches,
                          assert_matches_plain_transcription,
                          grey_crop, grey_tensors, log_rows, logged_losses, training_pair)
from scipy import ndimage

from fusekit.io.formats import write_safetensors
from fusekit.models import FUSION_MODELS
from fusekit.models.mtif import LEVELS, MTIF, MTIFConfig
from fusekit.models.mtif_loss import MTIFLossConfig, multi_grained_loss
from fusekit.models.losses import LOSSES, ssim
from fusekit.app.train.presets import PRESETS

TINY = MTIFConfig(channels=(4, 4, 4), heads=2, decoder_blocks=1, adapter_hidden=16)


def level_text(seed: int = 0, tokens: int = 10, dim: int = 768) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(1, tokens, dim, generator=generator) for name in LEVELS}


def tiny(**changes):
    torch.manual_seed(0)
    return MTIF(dataclasses.replace(TINY, **changes)).eval()


def test_registration():
    spec = FUSION_MODELS.get("mtif")
    assert spec.guidance == ("text_levels",)
    assert spec.default_loss == "mtif" and spec.default_loss in LOSSES
    assert spec.train_augment == "mtif-enrichment"
    assert PRESETS.get(spec.train_preset).lr == 8e-5  # §5.1
    assert len(MTIFConfig().channels) == 3


@pytest.mark.slow
@pytest.mark.parametrize("strides", [(1, 1, 1), (1, 2, 2)])
def test_forward_at_odd_size_keeps_size(strides):
    a, b = grey_crop("MEF", "MEFB", "AirBellowsGap", 257, 383)
    model = tiny(strides=strides)
    with torch.inference_mode():
        fused = model(a, b, **level_text())
        outputs = model.training_outputs(a, b, **level_text())
    assert fused.shape == (1, 1, 257, 383)
    assert torch.isfinite(fused).all() and fused.min() >= 0 and fused.max() <= 1
    assert set(outputs) == {"fused", "level1", "level2"}
    assert all(image.shape == (1, 1, 257, 383) for image in outputs.values())
    assert torch.equal(outputs["fused"], fused)


@pytest.mark.slow
def test_gradients_reach_every_parameter():
    a, b = grey_crop("MFF", "MFIFB", "savic_03", 40, 56)
    model = tiny(shared_encoder=False).train()
    batch = {"a": a, "b": b, **level_text()}
    total, parts = LOSSES.get("mtif")(model.training_outputs(a, b, **level_text()), batch, "mff")
    total.backward()
    assert set(parts) == {"base_pixel", "base_grad", "feat_grad", "feat_ssim"}
    assert_every_parameter_learns(model)


@pytest.mark.slow
def test_each_level_reads_its_own_text():
    a, b = grey_crop("MEF", "MEFB", "Chair", 32, 48)
    model = tiny()
    with torch.inference_mode():
        base = model(a, b, **level_text(0))
        for name in LEVELS:
            changed = {**level_text(0), name: level_text(1)[name]}
            assert (model(a, b, **changed) - base).abs().max() > 1e-6, name
    with pytest.raises(ValueError, match="text_structure"):
        model(a, b, text_detail=level_text()["text_detail"], text_semantic=level_text()["text_semantic"])


def test_without_text_guidance_ablation():
    ablated = tiny(use_text=False)
    names = [name for name, _ in ablated.named_parameters()]
    assert not any(name.startswith("adapters.") or ".guide." in name for name in names)
    assert any(".guide." in name for name, _ in tiny().named_parameters())
    a, b = grey_crop("MEF", "MEFB", "Chair", 32, 48)
    with torch.inference_mode():
        assert torch.equal(ablated(a, b), ablated(a, b, **level_text(2)))


def test_without_multi_grained_loss_ablation_is_the_base_loss():
    a, b = grey_crop("MEF", "MEFB", "Chair", 32, 48)
    ablated = tiny(multi_grained_loss=False)
    assert not any(name.startswith("level_decoders.") for name, _ in ablated.named_parameters())
    outputs = ablated.training_outputs(a, b, **level_text())
    assert set(outputs) == {"fused"}
    total, parts = multi_grained_loss(outputs, {"a": a, "b": b}, "mef")
    assert set(parts) == {"base_pixel", "base_grad"}
    assert float(total.detach()) == pytest.approx(parts["base_pixel"] + 100 * parts["base_grad"], rel=1e-6)


def sobel_numpy(x: np.ndarray) -> np.ndarray:
    """|Sobel_x * x| + |Sobel_y * x|, cross-correlation with zero padding (FILM's form), in float64."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    return (np.abs(ndimage.correlate(x, kx, mode="constant"))
            + np.abs(ndimage.correlate(x, kx.T[::-1], mode="constant")))


@pytest.mark.parametrize("task,weights", [("mef", (10, 1, 1, 100)), ("mff", (10, 1, 1, 300))])
def test_loss_matches_a_direct_computation(task, weights):
    """Eqs. 6–13 with the paper's weights (§5.1), on real images standing in for the three outputs."""
    a, b = grey_crop("MEF", "MEFB", "Balloons", 64, 96)
    other_a, other_b = grey_crop("MFF", "MFIFB", "aymaz_05", 64, 96)
    outputs = {"fused": other_a, "level1": other_b, "level2": (other_a + a) / 2}
    total, parts = multi_grained_loss(outputs, {"a": a, "b": b}, task)

    na, nb = a[0, 0].double().numpy(), b[0, 0].double().numpy()
    fused, level1 = other_a[0, 0].double().numpy(), other_b[0, 0].double().numpy()
    brightest = np.maximum(na, nb)
    expected = {
        "base_pixel": np.abs(fused - brightest).mean(),
        "base_grad": np.abs(sobel_numpy(fused) - sobel_numpy(brightest)).mean(),
        "feat_grad": np.abs(sobel_numpy(level1) - sobel_numpy(brightest)).mean(),
        "feat_ssim": float(2 - ssim(outputs["level2"], a) - ssim(outputs["level2"], b)),
    }
    for name, value in expected.items():
        assert parts[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    alpha1, alpha2, beta1, beta2 = weights
    direct = (alpha1 * expected["feat_grad"] + alpha2 * expected["feat_ssim"]
              + beta1 * expected["base_pixel"] + beta2 * expected["base_grad"])
    assert float(total) == pytest.approx(direct, rel=1e-5)

    # FILM's reading of the gradient target: max(|∇A|, |∇B|) instead of |∇ max(A, B)|.
    _, film_form = multi_grained_loss(outputs, {"a": a, "b": b}, task, MTIFLossConfig(gradient_target="max-gradient"))
    reference = np.maximum(sobel_numpy(na), sobel_numpy(nb))
    assert film_form["base_grad"] == pytest.approx(np.abs(sobel_numpy(fused) - reference).mean(), rel=1e-5)


def test_save_load_fuse_gives_identical_output(tmp_path):
    paths = pair_paths("MEF", "MEFB", "Chair")
    model, text = tiny(), level_text(4)
    features = tmp_path / "pair.safetensors"
    write_safetensors(features, "text-features", {name: value[0] for name, value in text.items()},
                      {"encoder": "blip2", "dim": "768"})
    weights, expected, _ = assert_checkpoint_round_trip(tmp_path, "mtif", model, "mef", *grey_tensors(paths), text)
    assert_fuse_cli_matches(tmp_path, paths, "mef", "mtif", weights, ["--text", str(features)], expected)


def test_fusekit_train_steps_reduce_the_loss(tmp_path):
    """Through the real CLI, with the paper's enrichment: each step is a batch of the pair's five crops."""
    manifest = training_pair(tmp_path, "MEF/MEFB", ("over", "under"), "ArchSequence", (60, 80, 96, 128))
    features = tmp_path / "text"
    features.mkdir()
    write_safetensors(features / "ArchSequence.safetensors", "text-features",
                      {name: value[0] for name, value in level_text(8).items()}, {"encoder": "blip2", "dim": "768"})
    tiny_fields = [item for key, value in (("channels", [4, 4, 4]), ("heads", 2), ("decoder_blocks", 1),
                                           ("adapter_hidden", 16)) for item in ("--set", f"{key}={json.dumps(value)}")]
    result = run_fusekit("train", "--model", "mtif", "--task", "mef", "--data", manifest, "--text", str(features),
                         "--out", str(tmp_path / "run"), *tiny_fields, "--batch-size", "1", "--crop", "0",
                         "--resize", "none", "--lr", "1e-2", "--max-steps", "8", "--log-every", "1",
                         "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    losses = logged_losses(tmp_path / "run")
    assert len(losses) == 8 and losses[-1] < 0.9 * losses[0], losses
    parts = log_rows(tmp_path / "run")[0]["parts"]
    assert set(parts) == {"base_pixel", "base_grad", "feat_grad", "feat_ssim"}

    # Exp. III "w/o VE": the same first step on the whole pair instead of its five crops.
    result = run_fusekit("train", "--model", "mtif", "--task", "mef", "--data", manifest, "--text", str(features),
                         "--out", str(tmp_path / "without"), *tiny_fields, "--batch-size", "1", "--crop", "0",
                         "--resize", "none", "--lr", "1e-2", "--max-steps", "1", "--device", "cpu",
                         "--no-paper-augment")
    assert result.returncode == 0, result.stderr.decode()
    assert json.load(open(tmp_path / "without" / "run.json"))["settings"]["paper_augment"] is False
    assert logged_losses(tmp_path / "without")[0] != pytest.approx(losses[0], rel=1e-3)


def test_paper_default_network_matches_its_plain_transcription():
    torch.manual_seed(0)
    model = MTIF(MTIFConfig())
    assert_matches_plain_transcription(model, *grey_crop("IVF", "MSRS", "00040N", 48, 72), level_text(tokens=20))
