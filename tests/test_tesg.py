"""TeSG (papers/003) fusion network: sizes, mask and text guidance, ablations, loss, training steps, fuse round trip.

Tiny configs on real DEV-set images (shared/data) and training crops (shared/train). The mask is the union of
the brightest infrared pixels and the SIG's binarisation of the visible image (a stand-in for the diffusion mask,
which tests/test_tesg_semantics.py covers); text semantics are a fixed random [1, L, D] tensor.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import pair_paths
from model_checks import (assert_checkpoint_round_trip, assert_fuse_cli_matches, grey_tensors, grey_window,
                          ivf_training_windows, log_rows, logged_losses)

from fusekit.errors import FusekitError
from fusekit.models import FUSION_MODELS
from fusekit.models.tesg import TeSG, TeSGConfig
from fusekit.guidance.semantics import binarise, union, write_semantics
from fusekit.models.losses import LOSSES, gradient_loss, intensity_loss, ssim_loss
from fusekit.app.train.presets import PRESETS

TEXT_DIM = 12
TINY = TeSGConfig(channels=8, blocks=1, heads=2, text_dim=TEXT_DIM)


def crop(paths, top: int, left: int, height: int, width: int):
    """(a, b, mask) [1, 1, H, W] tensors of the window."""
    a, b = grey_window(paths, top, left, height, width)
    mask = union(binarise(a[0, 0], 0.7), binarise(b[0, 0], 0.9))[None, None]
    return a, b, mask


def text(seed: int = 0, tokens: int = 9) -> torch.Tensor:
    return torch.randn(1, tokens, TEXT_DIM, generator=torch.Generator().manual_seed(seed))


def tiny(**changes) -> TeSG:
    torch.manual_seed(0)
    return TeSG(dataclasses.replace(TINY, **changes)).eval()


def test_registration_and_paper_defaults():
    spec = FUSION_MODELS.get("tesg")
    assert spec.kind == "learned" and spec.guidance == ("semantics",) and spec.default_loss == "tesg"
    preset = PRESETS.get(spec.train_preset)
    assert (preset.optimizer, preset.lr, preset.crop, preset.batch_size, preset.epochs) == ("adamw", 1e-4, 96, 8, 140)
    model = TeSG(TeSGConfig())
    assert len(model.encoder_ir.blocks) == len(model.encoder_vi.blocks) == len(model.decoder) == 4


def test_forward_at_odd_size_keeps_size():
    a, b, mask = crop(pair_paths("IVF", "MSRS", "00040N"), 51, 77, 61, 47)
    assert 0 < float(mask.mean()) < 1
    with torch.inference_mode():
        fused = tiny()(a, b, mask=mask, text_semantics=text())
    assert fused.shape == (1, 1, 61, 47)
    assert torch.isfinite(fused).all() and fused.min() >= 0 and fused.max() <= 1


@pytest.mark.slow
def test_ablations_change_what_they_say():
    a, b, mask = crop(pair_paths("IVF", "MSRS", "00103D"), 200, 300, 35, 29)
    other_mask, other_text = 1 - mask, text(seed=5)

    def run(model, m, t):
        with torch.inference_mode():
            return model(a, b, mask=m, text_semantics=t)

    full, no_mgca, no_tivr, no_gaf = tiny(), tiny(use_mgca=False), tiny(use_tivr=False), tiny(use_gaf=False)
    # the full model listens to both the mask and the text
    assert not torch.allclose(run(full, mask, text()), run(full, other_mask, text()))
    assert not torch.allclose(run(full, mask, text()), run(full, mask, other_text))
    # w/o MGCA: whole-image cross-attention, the mask is not used (nor needed)
    assert torch.equal(run(no_mgca, mask, text()), run(no_mgca, other_mask, text()))
    assert torch.equal(run(no_mgca, None, text()), run(no_mgca, mask, text()))
    assert set(no_mgca.ca_vi) == {"all"} and set(full.ca_vi) == {"fg", "bg"}
    # w/o TIVR: the text is not used (nor needed)
    assert torch.equal(run(no_tivr, mask, text()), run(no_tivr, mask, other_text))
    assert torch.equal(run(no_tivr, mask, None), run(no_tivr, mask, text()))
    # w/o GAF: no gates or spatial attention, still text- and mask-guided
    keys = {key.split(".")[0] for key in no_gaf.state_dict()}
    assert not keys & {"gate_vi", "gate_ir", "spatial_attention"} and "project" in keys
    assert not torch.allclose(run(no_gaf, mask, text()), run(no_gaf, mask, other_text))
    with pytest.raises(ValueError, match="mask"):
        full(a, b, text_semantics=text())
    with pytest.raises(FusekitError, match="12-d"):
        full(a, b, mask=mask, text_semantics=torch.zeros(1, 3, 7))


def test_gated_fusion_is_eq_10():
    a, b, mask = crop(pair_paths("IVF", "RoadScene", "FLIR_06570"), 0, 0, 24, 24)
    model = tiny()
    seen = {}
    model.decoder.register_forward_hook(lambda module, inputs, output: seen.setdefault("F", inputs[0]))
    with torch.inference_mode():
        model(a, b, mask=mask, text_semantics=text())
        f_ir, f_vi = model.encoder_ir(a), model.encoder_vi(b)
        f_vi_rec, f_iv_rec = model.reconstructed(a, b, f_ir, f_vi, mask)
        f_r = model.tivr(torch.cat([f_vi_rec, f_iv_rec], dim=1), text())
        vis, inf = f_vi + f_vi_rec, f_ir + f_iv_rec
        alpha = torch.sigmoid(model.spatial_attention(f_r))
        g_v, g_i = torch.sigmoid(model.gate_vi(vis)), torch.sigmoid(model.gate_ir(inf))
        expected = alpha * (1 + g_v) * vis + (1 - alpha) * (1 + g_i) * inf
    torch.testing.assert_close(seen["F"], expected, rtol=1e-5, atol=1e-6)


def test_loss_terms():
    g = torch.Generator().manual_seed(3)
    a, b, fused = (torch.rand(1, 1, 32, 32, generator=g) for _ in range(3))
    total, parts = LOSSES.get("tesg")({"fused": fused}, {"a": a, "b": b}, "ivf")
    expected = intensity_loss(fused, a, b, "max") + 10 * gradient_loss(fused, a, b) + ssim_loss(fused, a, b)
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert set(parts) == {"int", "grad", "ssim"}


@pytest.mark.slow
def test_fusekit_train_steps_reduce_the_loss(tmp_path):
    """`fusekit train`'s loop (in process) on two 64x64 windows of shared/train pairs, semantics from files."""
    from fusekit.app.guidance import GuidanceOptions
    from fusekit.app.train.loop import Settings, train

    for index, name in enumerate(ivf_training_windows(tmp_path / "data")):
        _, _, mask = crop([tmp_path / "data" / side / f"{name}.png" for side in ("ir", "vi")], 0, 0, 64, 64)
        write_semantics(tmp_path / "semantics" / f"{name}.safetensors",
                        {"mask": mask[0, 0], "text_semantics": text(seed=index)[0]}, {"dim": str(TEXT_DIM)})
    settings = Settings(
        model="tesg", task="ivf", data=str(tmp_path / "data"), out=str(tmp_path / "run"), crop=0, augment=[],
        batch_size=2, epochs=8, lr=3e-3, schedule="constant", device="cpu", log_every=1,
        config=dataclasses.asdict(TINY), guidance=GuidanceOptions(semantics=str(tmp_path / "semantics"), task="ivf"),
    )
    assert train(settings) == 0
    rows, losses = log_rows(tmp_path / "run"), logged_losses(tmp_path / "run")
    assert len(losses) == 8 and losses[-1] < 0.85 * losses[0], losses
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses  # full batch, no augmentation
    assert set(rows[0]["parts"]) == {"int", "grad", "ssim"}


def test_save_load_fuse_gives_identical_output(tmp_path):
    paths = pair_paths("IVF", "TNO", "18")
    model = tiny()
    a, b = grey_tensors(paths)
    mask = union(binarise(a[0, 0], 0.7), binarise(b[0, 0], 0.9))
    semantics = tmp_path / "pair.safetensors"
    write_semantics(semantics, {"mask": mask, "text_semantics": text()[0]},
                    {"encoder_model": "test", "dim": str(TEXT_DIM), "caption": "a man", "keyword": "man"})
    weights, expected, _ = assert_checkpoint_round_trip(tmp_path, "tesg", model, "ivf", a, b,
                                                        {"mask": mask[None, None], "text_semantics": text()})
    assert_fuse_cli_matches(tmp_path, paths, "ivf", "tesg", weights, ["--semantics", str(semantics)], expected)


@pytest.mark.parametrize("changes", [{"shared_encoder_views": False}, {"output": "tanh01"}, {"gate_kernel": 1},
                                     {"attention_hidden": 3}])
def test_config_readings_run(changes):
    a, b, mask = crop(pair_paths("IVF", "MSRS", "00047N"), 0, 0, 21, 27)
    model = tiny(**changes)
    with torch.inference_mode():
        fused = model(a, b, mask=mask, text_semantics=text())
    assert fused.shape == (1, 1, 21, 27) and fused.min() >= 0 and fused.max() <= 1
    if changes.get("shared_encoder_views") is False:
        assert hasattr(model, "encoder_ir_views") and hasattr(model, "encoder_vi_views")
    with pytest.raises(ValueError):
        TeSGConfig(gate_kernel=2)
