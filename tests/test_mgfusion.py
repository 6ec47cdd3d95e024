"""MGFusion (papers/002): sizes, CLIP guidance from a tiny CLIP, ablations, loss, training steps, fuse round trip.

Tiny configs on real DEV-set images (shared/data) and training crops (shared/train). The CLIP image embeddings
come from a tiny CLIP vision tower built from a config (random weights): the model only sees their values.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import pair_paths
from model_checks import (assert_checkpoint_round_trip, assert_fuse_cli_matches, grey_tensors, grey_window,
                          ivf_training_windows, log_rows, logged_losses)

from fusekit.errors import FusekitError
from fusekit.io.formats import write_safetensors
from fusekit.models import FUSION_MODELS
from fusekit.models.mgfusion import MGFusion, MGFusionConfig
from fusekit.models.losses import LOSSES
from fusekit.app.train.presets import PRESETS, schedule_factor

EMBED = 16
TINY = MGFusionConfig(channels=8, blocks=1, heads=2, embed_dim=EMBED)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """A CLIP vision tower + projection built from a config (random weights, no download), saved as a folder."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=EMBED)
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return str(folder)


def clip_features(clip: str, paths) -> tuple[dict, dict]:
    """What `fusekit encode-image` computes for the pair: ``image_embed_a``/``_b`` [E] and metadata."""
    from fusekit.guidance.vision import ImageOptions, image_features

    return image_features([str(p) for p in paths], "clip", ImageOptions(device="cpu", model_path=clip))


def clip_embeds(clip: str, paths) -> tuple[torch.Tensor, torch.Tensor]:
    """[1, E] CLIP image embeddings of both images, through fusekit's CLIP image encoder."""
    tensors, _ = clip_features(clip, paths)
    return tensors["image_embed_a"][None], tensors["image_embed_b"][None]


def tiny(**changes) -> MGFusion:
    torch.manual_seed(0)
    return MGFusion(dataclasses.replace(TINY, **changes)).eval()


def test_registration_and_paper_defaults():
    spec = FUSION_MODELS.get("mgfusion")
    assert spec.kind == "learned" and spec.guidance == ("image_embeds",) and spec.tasks == ("ivf",)
    assert spec.default_loss == "mgfusion" and "mgfusion" in LOSSES
    preset = PRESETS.get(spec.train_preset)
    assert (preset.optimizer, preset.lr, preset.batch_size, preset.epochs) == ("adam", 1e-4, 16, 100)
    # lr 1e-4 → 1e-3 over the first 20 epochs, back to 1e-4 at the end (§4.2)
    assert [round(preset.lr * schedule_factor(preset.schedule, e, 100), 8) for e in (0, 10, 20, 60, 100)] == \
        [1e-4, 5.5e-4, 1e-3, 5.5e-4, 1e-4]
    model = MGFusion(MGFusionConfig())
    assert len(model.ire.blocks) == 4 and len(model.decoder) == 4
    assert model.cii_ir.weight_ir.shape == (512,) and model.cii_ir is not model.cii_vi


def test_shared_cii_saves_and_loads(tmp_path):
    model = tiny(shared_cii=True)
    assert not any(key.startswith("cii_vi.") for key in model.state_dict())
    a, b = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
    embeds = {"image_embed_a": torch.randn(1, EMBED), "image_embed_b": torch.randn(1, EMBED)}
    assert_checkpoint_round_trip(tmp_path, "mgfusion", model, "ivf", a, b, embeds)


def test_forward_at_odd_size_keeps_size(tiny_clip):
    paths = pair_paths("IVF", "MSRS", "00028N")
    a, b = grey_window(paths, 101, 203, 67, 45)
    embed_a, embed_b = clip_embeds(tiny_clip, paths)
    with torch.inference_mode():
        fused = tiny()(a, b, image_embed_a=embed_a, image_embed_b=embed_b)
    assert fused.shape == (1, 1, 67, 45)
    assert torch.isfinite(fused).all() and fused.min() >= 0 and fused.max() <= 1


@pytest.mark.slow
def test_ablations_change_what_they_say(tiny_clip):
    paths = pair_paths("IVF", "RoadScene", "FLIR_06570")
    a, b = grey_window(paths, 0, 0, 33, 41)
    embed_a, embed_b = clip_embeds(tiny_clip, paths)
    other_a = torch.randn_like(embed_a)

    def run(model, ea):
        with torch.inference_mode():
            return model(a, b, image_embed_a=ea, image_embed_b=embed_b)

    full, no_cii, no_cff, neither = tiny(), tiny(use_cii=False), tiny(use_cff=False), tiny(use_cii=False, use_cff=False)
    names = {label: {key.split(".")[0] for key in m.state_dict()} for label, m in
             (("full", full), ("no_cii", no_cii), ("no_cff", no_cff), ("neither", neither))}
    assert {"cii_ir", "cii_vi", "cff"} <= names["full"]
    assert "cii_ir" not in names["no_cii"] and "cff" in names["no_cii"]
    assert "cff" not in names["no_cff"] and "cii_ir" in names["no_cff"]
    # CLIP guidance reaches the output through CII alone and through CFF alone; with neither, it does not.
    for model in (full, no_cii, no_cff):
        assert not torch.allclose(run(model, embed_a), run(model, other_a))
    assert torch.equal(run(neither, embed_a), run(neither, other_a))
    assert torch.equal(neither(a, b), run(neither, embed_a))  # no embeddings needed at all
    with pytest.raises(ValueError, match="image_embed"):
        full(a, b)
    with pytest.raises(FusekitError, match="16-d"):
        full(a, b, image_embed_a=torch.zeros(1, 8), image_embed_b=torch.zeros(1, 8))
    # w/o CFF the decoder sees exactly the concatenated CII outputs
    seen = {}
    no_cff.decoder.register_forward_hook(lambda module, inputs, output: seen.setdefault("in", inputs[0]))
    run(no_cff, embed_a)
    with torch.inference_mode():
        f_ir = no_cff.cii_ir(no_cff.ire(a), embed_a, embed_b)
        f_vi = no_cff.cii_vi(no_cff.vie(b), embed_a, embed_b)
    assert torch.equal(seen["in"], torch.cat([f_ir, f_vi], dim=1))


def test_loss_is_the_papers():
    a = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    b = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(2))
    fused = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(3))
    total, parts = LOSSES.get("mgfusion")({"fused": fused}, {"a": a, "b": b}, "ivf")
    from fusekit.models.losses import sobel_gradient

    grad = (sobel_gradient(fused) - torch.maximum(sobel_gradient(a), sobel_gradient(b))).abs().mean()
    intensity = (fused - torch.maximum(a, b)).abs().mean()
    assert parts["grad"] == pytest.approx(float(grad), rel=1e-6)
    assert parts["int"] == pytest.approx(float(intensity), rel=1e-6)
    assert float(total) == pytest.approx(float(grad + 0.2 * intensity), rel=1e-6)


@pytest.mark.slow
def test_fusekit_train_steps_reduce_the_loss(tmp_path, tiny_clip):
    """`fusekit train`'s loop (in process) on two 64x64 windows of shared/train pairs, CLIP embeddings computed on
    the fly by fusekit's CLIP encoder and cached."""
    from fusekit.app.guidance import GuidanceOptions
    from fusekit.app.train.loop import Settings, train

    ivf_training_windows(tmp_path / "data")
    settings = Settings(
        model="mgfusion", task="ivf", data=str(tmp_path / "data"), out=str(tmp_path / "run"), crop=0, augment=[],
        batch_size=2, epochs=6, lr=2e-3, schedule="constant", device="cpu", log_every=1,
        config=dataclasses.asdict(TINY),
        guidance=GuidanceOptions(image_encoder="clip", image_encoder_model=tiny_clip, cache=str(tmp_path / "cache"), task="ivf"),
    )
    assert train(settings) == 0
    rows, losses = log_rows(tmp_path / "run"), logged_losses(tmp_path / "run")
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses  # full batch, no augmentation
    assert set(rows[0]["parts"]) == {"grad", "int"}
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_save_load_fuse_gives_identical_output(tmp_path, tiny_clip):
    paths = pair_paths("IVF", "TNO", "10")
    embed_a, embed_b = clip_embeds(tiny_clip, paths)
    model = tiny()
    features = tmp_path / "pair.safetensors"
    write_safetensors(features, "image-features", *clip_features(tiny_clip, paths))
    weights, expected, metadata = assert_checkpoint_round_trip(
        tmp_path, "mgfusion", model, "ivf", *grey_tensors(paths), {"image_embed_a": embed_a, "image_embed_b": embed_b},
        image_encoder="clip", image_dim=EMBED)
    assert metadata["image_dim"] == str(EMBED)
    assert_fuse_cli_matches(tmp_path, paths, "ivf", "mgfusion", weights, ["--image-features", str(features)], expected)


@pytest.mark.parametrize("changes", [
    {"sawp_single_channel": True}, {"cff_weight_activation": "none"}, {"adapter_activation": "gelu", "adapter_hidden": 5},
    {"output": "tanh_clamp"},
])
def test_config_readings_run(changes):
    a, b = torch.rand(1, 1, 19, 23), torch.rand(1, 1, 19, 23)
    model = tiny(**changes)
    with torch.inference_mode():
        fused = model(a, b, image_embed_a=torch.randn(1, EMBED), image_embed_b=torch.randn(1, EMBED))
    assert fused.shape == (1, 1, 19, 23) and fused.min() >= 0 and fused.max() <= 1
    if "sawp_single_channel" in changes:
        assert model.cff.sawp[-1].out_channels == 1
    with pytest.raises(ValueError):
        MGFusionConfig(channels=10, heads=4)
