"""FILM as released: golden outputs of the released network, the released checkpoint layout, checkpoint errors.

Golden values: `golden/film/film_case_a_*` (the released code's raw output on CPU, float32); tolerance 1e-5
absolute, as the issue states (observed: ~2.4e-7).
"""

from __future__ import annotations

import importlib.util
import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import GOLDEN, REPO, assert_user_error, run_fusekit
from fusekit.errors import FusekitError
from fusekit.models.checkpoints import load_model, save_checkpoint
from fusekit.models.film import FILM, FILMConfig, TransformerBlock, from_released_key

FILM_DIR = GOLDEN / "film"
WEIGHTS = FILM_DIR / "film_case_a_weights.safetensors"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def case():
    return load_file(str(FILM_DIR / "film_case_a_io.safetensors"))


@pytest.fixture(scope="module")
def released_pth(tmp_path_factory):
    """The golden weights re-saved as the released code saves them: {'model': DataParallel state dict}."""
    path = tmp_path_factory.mktemp("film") / "released.pth"
    torch.save({"model": load_file(str(WEIGHTS)), "epoch": 150}, path)
    return path


def _released_transcription():
    spec = importlib.util.spec_from_file_location("film_speed", REPO / "benchmarks" / "film_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module, case):
    with torch.inference_mode():
        return module(case["image_a"], case["image_b"], case["text"])


def test_golden_from_safetensors(case):
    module, metadata = load_model("film", WEIGHTS, "ivf")
    assert (_run(module, case) - case["fused"]).abs().max().item() < TOLERANCE
    assert metadata["text_encoder"] == "blip2" and metadata["text_dim"] == "768"


@pytest.mark.slow
def test_golden_from_released_pth(case, released_pth):
    module, _ = load_model("film", released_pth, "ivf")
    assert (_run(module, case) - case["fused"]).abs().max().item() < TOLERANCE


@pytest.mark.slow
def test_band_height_does_not_change_the_output(case):
    module, _ = load_model("film", WEIGHTS, "ivf")
    module.set_band_rows(7)  # bands that do not divide 96, and single-row halos everywhere
    banded = _run(module, case)
    module.set_band_rows(1000)  # the whole image at once
    whole = _run(module, case)
    assert (banded - whole).abs().max().item() < 1e-6
    assert (banded - case["fused"]).abs().max().item() < TOLERANCE


def test_every_released_key_maps_to_a_parameter_of_the_same_shape():
    expected = json.loads((FILM_DIR / "film_official_state_dict_keys.json").read_text())
    state = FILM().state_dict()
    mapped = {from_released_key(key.removeprefix("module.")): shape for key, shape in expected.items()}
    assert len(mapped) == len(expected) == len(state) == 189
    assert {key: list(value.shape) for key, value in state.items()} == mapped
    assert sum(value.numel() for value in state.values()) == 2_070_235


@pytest.mark.slow
def test_released_transcription_in_the_benchmark_matches_golden(case):
    """benchmarks/film_speed.py measures against this transcription, so it must be the released network."""
    released = _released_transcription().ReleasedNet()
    released.load_state_dict({key.removeprefix("module."): value for key, value in load_file(str(WEIGHTS)).items()})
    assert (_run(released.eval(), case) - case["fused"]).abs().max().item() < TOLERANCE


def test_transformer_block_gradients_match_the_released_block():
    """Other models train through fusekit's banded block: its gradients must be the whole-image block's."""
    torch.manual_seed(0)
    released = _released_transcription().TransformerBlock(16, num_heads=2, ffn_expansion_factor=4)
    ours = TransformerBlock(16, 2, 4)
    ours.band_rows = 5
    for parameter in released.parameters():
        parameter.data.normal_(0, 0.3)
    ours.load_state_dict({from_released_key(key): value for key, value in released.state_dict().items()})
    x = torch.randn(2, 16, 13, 11)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = released(x1), ours(x2)
    assert (out1 - out2).abs().max().item() < 1e-5
    (out1.square().sum()).backward()
    (out2.square().sum()).backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-4)
    grads = {from_released_key(k): p.grad for k, p in released.named_parameters()}
    for name, parameter in ours.named_parameters():
        assert torch.allclose(parameter.grad, grads[name], atol=1e-3, rtol=1e-4), name


@pytest.mark.slow
def test_checkpoint_round_trip_keeps_config_and_metadata(tmp_path, case):
    module, _ = load_model("film", WEIGHTS, "ivf")
    path = tmp_path / "film_ivf.safetensors"
    save_checkpoint(path, "film", module, module.config, "ivf", loss="film", step=12)
    loaded, metadata = load_model("film", path, "ivf")
    assert metadata["model"] == "film" and metadata["task"] == "ivf" and metadata["loss"] == "film"
    assert metadata["step"] == "12" and metadata["text_encoder"] == "blip2"
    assert json.loads(metadata["config"])["token_grid"] == [288, 384]
    assert torch.equal(_run(loaded, case), _run(module, case))


def test_small_config_builds_and_runs_any_size():
    config = FILMConfig(token_dim=16, channels=8, heads=2, token_grid=(12, 16))
    module = FILM(config).eval()
    with torch.inference_mode():
        out = module(torch.rand(2, 1, 21, 17), torch.rand(2, 1, 21, 17), torch.randn(2, 5, 768))
    assert out.shape == (2, 1, 21, 17) and 0 <= out.min() and out.max() <= 1


# ------------------------------------------------------------------------------------------ bad weight files


def _error(path, model="film") -> str:
    with pytest.raises(FusekitError) as info:
        load_model(model, path, "ivf")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_extra_and_misshaped_keys_name_the_first_offender(tmp_path):
    state = load_file(str(WEIGHTS))
    missing = dict(state)
    del missing["module.restormer1.attn.temperature"]
    save_file(missing, tmp_path / "missing.safetensors")
    assert "fuse_block.attn.temperature" in _error(tmp_path / "missing.safetensors")
    extra = dict(state, **{"module.extra.weight": torch.zeros(3)})
    save_file(extra, tmp_path / "extra.safetensors")
    assert "extra.weight" in _error(tmp_path / "extra.safetensors")
    shaped = dict(state, **{"module.conv2.bias": torch.zeros(2)})
    save_file(shaped, tmp_path / "shape.safetensors")
    message = _error(tmp_path / "shape.safetensors")
    assert "head.bias" in message and "[2]" in message and "[1]" in message


def test_truncated_and_foreign_files(tmp_path, released_pth):
    data = WEIGHTS.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(tmp_path / "cut.safetensors")
    pth = released_pth.read_bytes()
    (tmp_path / "cut.pth").write_bytes(pth[: len(pth) // 2])
    assert "truncated" in _error(tmp_path / "cut.pth")
    (tmp_path / "notes.txt").write_text("not weights")
    assert "not a checkpoint" in _error(tmp_path / "notes.txt")
    assert "not found" in _error(tmp_path / "absent.pth")


def test_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as stream:
        pickle.dump({"model": Payload()}, stream, protocol=2)
    assert "truncated" in _error(path) or "more than weights" in _error(path)
    torch.save({"model": {"w": torch.zeros(1)}, "config": Payload()}, tmp_path / "evil2.pth")
    assert "more than weights" in _error(tmp_path / "evil2.pth")


def test_checkpoint_of_another_model_is_refused(tmp_path):
    module, _ = load_model("film", WEIGHTS, "ivf")
    path = tmp_path / "film.safetensors"
    save_checkpoint(path, "film", module, None, "ivf")
    from fusekit.io.formats import read_checkpoint, write_safetensors

    tensors, metadata = read_checkpoint(path)
    metadata["model"] = "tgif"
    write_safetensors(path, "checkpoint", tensors, {k: v for k, v in metadata.items() if k not in ("schema", "fusekit_version")})
    assert "use --model tgif" in _error(path)


def test_models_import_writes_a_fusekit_checkpoint(tmp_path, released_pth, case):
    out = tmp_path / "film_mef.safetensors"
    result = run_fusekit("models", "import", released_pth, "--model", "film", "--task", "mef", "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    module, metadata = load_model("film", out, "mef")
    assert metadata["task"] == "mef" and metadata["text_encoder"] == "blip2" and metadata["source"] == "released.pth"
    assert (_run(module, case) - case["fused"]).abs().max().item() < TOLERANCE
    bad = tmp_path / "bad.pth"
    bad.write_bytes(released_pth.read_bytes()[:1000])
    assert_user_error(run_fusekit("models", "import", bad, "--model", "film", "--task", "mef", "-o", tmp_path / "x.safetensors"),
                      "models import", 1, "truncated")
    assert not (tmp_path / "x.safetensors").exists()
