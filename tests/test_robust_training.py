"""Issue 17 item 2 and 7: NaN in TeSG training, what every trainer does with a non-finite step, weights and
outputs with NaN refused by `fuse`, and `train --resume` with a changed setting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import assert_user_error, pair_paths, run_fusekit
from train_tiny import ivf_manifest

from fusekit.cli import main
from fusekit.models.losses import LOSSES

IR, VI = pair_paths("IVF", "MSRS", "00028N")
COMMON = ["--model", "tiny-test", "--task", "ivf", "--crop", "32", "--batch-size", "4", "--lr", "0.01",
          "--log-every", "1", "--device", "cpu", "-q"]
CALLS = {"count": 0}


@LOSSES.register("test-nan-from-step-3")
def _nan_from_step_3(outputs, batch, task):
    """FILM's loss, NaN from its third call on (a run that diverges after two good steps)."""
    CALLS["count"] += 1
    loss, parts = LOSSES.get("film")(outputs, batch, task)
    return (loss * float("nan") if CALLS["count"] >= 3 else loss), parts


@LOSSES.register("test-nan-gradient")
def _nan_gradient(outputs, batch, task):
    """FILM's loss plus 0·sqrt(0): the loss stays finite, the gradient is NaN (0 · ∞)."""
    loss, parts = LOSSES.get("film")(outputs, batch, task)
    return loss + 0 * (outputs["fused"] * 0).sqrt().sum(), parts


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return ivf_manifest(tmp_path_factory.mktemp("robust-data"))


def _strict_json(text: str):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a JSON log"))


@pytest.mark.parametrize("fill", [0.0, 1.0], ids=["all-zero-mask", "all-one-mask"])
def test_tesg_gradients_stay_finite_for_an_empty_or_full_mask_crop(fill):
    from fusekit.models.tesg import TeSG, TeSGConfig, tesg_loss

    torch.manual_seed(0)
    model = TeSG(TeSGConfig(channels=8, blocks=1, heads=2, text_dim=16))
    a, b = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    fused = model(a, b, torch.full((2, 1, 32, 32), fill), torch.rand(2, 4, 16))
    loss, _ = tesg_loss({"fused": fused}, {"a": a, "b": b}, "ivf")
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    bad = [name for name, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, bad


@pytest.mark.parametrize("loss, says", [("test-nan-from-step-3", "loss is nan at step 3"),
                                        ("test-nan-gradient", "gradient is NaN or infinite at step 1")])
def test_a_non_finite_step_stops_the_run_with_one_line_and_keeps_the_last_good_checkpoint(manifest, tmp_path, capsys, loss, says):
    CALLS["count"] = 0
    out = tmp_path / "run"
    capsys.readouterr()
    code = main(["train", *COMMON, "--data", str(manifest), "--epochs", "3", "--checkpoint-every", "1",
                 "--loss", loss, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "fusekit train: error:" in line]
    assert len(lines) == 1 and says in lines[0], err
    checkpoints = sorted((out / "checkpoints").glob("*.safetensors"))
    expected = ["step-00000001.safetensors", "step-00000002.safetensors"] if loss == "test-nan-from-step-3" else []
    assert [p.name for p in checkpoints] == expected
    if checkpoints:
        assert "--resume" in lines[0] and str(checkpoints[-1]) in lines[0]
        from safetensors.torch import load_file

        assert all(torch.isfinite(t).all() for t in load_file(str(checkpoints[-1])).values())
        for line in (out / "log.jsonl").read_text().splitlines():
            _strict_json(line)
    assert not (out / "model.safetensors").exists()


def test_log_rows_with_nan_are_valid_json():
    from fusekit.app.train.guard import loggable

    row = loggable({"loss": float("nan"), "parts": {"int": float("inf"), "ssim": 0.5}, "metrics": [1.0, float("-inf")]})
    text = json.dumps(row, allow_nan=False)
    assert _strict_json(text) == {"loss": None, "parts": {"int": None, "ssim": 0.5}, "metrics": [1.0, None]}


def test_fuse_refuses_weights_with_nan(tmp_path):
    from fusekit.models.checkpoints import load_model, save_checkpoint

    module, _ = load_model("compact", None, "ivf")
    name, parameter = next(iter(module.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[0] = float("nan")
    weights = tmp_path / "nan.safetensors"
    save_checkpoint(weights, "compact", module, module.config, "ivf")
    out = tmp_path / "fused.png"
    result = run_fusekit("fuse", IR, VI, "--task", "ivf", "--model", "compact", "--weights", weights, "-o", out)
    assert_user_error(result, "fuse", contains=f"parameter {name!r} holds NaN")
    assert not out.exists()


@pytest.mark.parametrize("postprocess", ["clip", "film"])
def test_fuse_refuses_an_output_with_nan_pixels(postprocess):
    from fusekit.app.fuse import finish
    from fusekit.errors import FusekitError

    raw = np.full((4, 4), 0.5, np.float32)
    raw[1, 2] = np.nan
    with pytest.raises(FusekitError, match="NaN or infinite pixels"):
        finish(raw, None, postprocess, 8)


# ----------------------------------------------------------------------------------------- 7. --resume settings


def test_resume_refuses_a_changed_setting_and_records_the_resume(manifest, tmp_path, capsys):
    from fusekit.io.formats import read_checkpoint

    out = tmp_path / "run"
    assert main(["train", *COMMON, "--data", str(manifest), "--max-steps", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--lr", "0.1", "-q"]) == 2
    err = capsys.readouterr().err
    assert "fusekit train: error:" in err and "--lr" in err and "Traceback" not in err, err
    assert main(["train", "--resume", "--out", str(out), "--lr", "0.01", "--max-steps", "3", "-q"]) == 0  # the same value
    _, meta = read_checkpoint(out / "model.safetensors")
    history = json.loads(meta["history"])
    assert [entry["from_step"] for entry in history] == [2] and history[0]["changed"] == {"max_steps": 3}


def test_one_epoch_is_said_in_the_singular(manifest, tmp_path, capsys):
    capsys.readouterr()
    args = [arg for arg in COMMON if arg != "-q"]
    assert main(["train", *args, "--data", str(manifest), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "1 epoch × 2 steps" in err and "1 epochs" not in err, err
