"""The offline pipe's features are what `fuse` wants: accepted by a model that expects offline 768-d text, refused
(with a hint) by one that expects BLIP-2 features."""

from __future__ import annotations

import pytest

from conftest import assert_user_error, pair_paths, run_fusekit

PAIR = pair_paths("IVF", "TNO", "10")


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipe")
    described = run_fusekit("describe", *PAIR, "--task", "ivf")
    assert described.returncode == 0, described.stderr.decode()
    result = run_fusekit("encode-text", "-o", folder / "text.safetensors", input=described.stdout)
    assert result.returncode == 0, result.stderr.decode()
    return folder


def test_fuse_accepts_offline_features_for_the_compact_model(features):
    import torch

    from fusekit.models.checkpoints import learned_spec, save_checkpoint
    from fusekit.models.registry import FUSION_MODELS  # noqa: F401  (registrations)

    spec = learned_spec("compact")
    if spec.text_encoder != "offline":
        pytest.skip("the compact model no longer expects offline text features")
    torch.manual_seed(0)
    config = spec.config()
    save_checkpoint(features / "compact.safetensors", "compact", spec.build(config), config, "ivf")
    out = features / "fused.png"
    result = run_fusekit("fuse", *PAIR, "--task", "ivf", "--model", "compact", "--weights", features / "compact.safetensors",
                         "--text", features / "text.safetensors", "-o", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    assert out.stat().st_size > 0


def test_fuse_refuses_offline_features_for_film(features):
    from conftest import GOLDEN

    weights = GOLDEN / "film" / "film_case_a_weights.safetensors"  # released layout, random weights
    result = run_fusekit("fuse", *PAIR, "--task", "ivf", "--model", "film", "--weights", weights,
                         "--text", features / "text.safetensors", "-o", features / "film.png", "--device", "cpu")
    assert_user_error(result, "fuse", 1, "needs 'blip2' features (run fusekit encode-text --encoder blip2)")
