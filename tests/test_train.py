"""`fusekit train` end to end on real training pairs: loss goes down, resume is exact, interruption is safe,
DDP under torchrun matches one process, and a trained checkpoint runs in `fuse`.

The loop's mechanics use the test-only ``tiny-test`` model (tests/train_tiny.py); one test trains a real registered
model (TGIF, tiny config) and fuses with the result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import DATA, REPO
from train_tiny import TEXT_DIM, ivf_manifest

from fusekit.cli import main
from fusekit.io.formats import read_checkpoint

HELPER = Path(__file__).resolve().parent / "train_tiny.py"
COMMON = ["--model", "tiny-test", "--task", "ivf", "--crop", "32", "--batch-size", "4", "--lr", "0.01",
          "--log-every", "1", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return ivf_manifest(tmp_path_factory.mktemp("tiny-data"))


def train_rows(out: Path, kind: str = "train") -> list[dict]:
    return [row for row in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if row["kind"] == kind]


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_a_few_steps_reduce_the_loss(manifest, tmp_path):
    out = tmp_path / "run"
    code = main(["train", *COMMON, "--data", str(manifest), "--epochs", "8", "--out", str(out)])
    assert code == 0
    losses = [row["loss"] for row in train_rows(out)]
    assert len(losses) == 16  # 8 pairs / batch 4 = 2 steps per epoch
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4, losses
    run = json.loads((out / "run.json").read_text())
    assert run["loss"] == "film" and run["preset"]["batch_size"] == 4 and len(run["data_sha256"]) == 64
    _, meta = read_checkpoint(out / "model.safetensors")
    assert meta["model"] == "tiny-test" and meta["task"] == "ivf" and meta["step"] == "16"
    assert meta["data_manifest_sha256"] == run["data_sha256"] and meta["text_dim"] == str(TEXT_DIM)
    assert meta["train_command"].startswith("fusekit train")


def test_resume_continues_with_the_same_steps_and_optimizer_state(manifest, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = [*COMMON, "--data", str(manifest), "--epochs", "3"]
    assert main(["train", *args, "--out", str(straight)]) == 0
    assert main(["train", *args, "--out", str(split), "--max-steps", "3"]) == 0  # stops mid-epoch 2
    assert train_rows(split)[-1]["step"] == 3
    assert main(["train", "--resume", "--out", str(split), "-q", "--max-steps", "6"]) == 0
    assert [row["step"] for row in train_rows(split)] == [1, 2, 3, 4, 5, 6]
    a, b = weights(straight / "model.safetensors"), weights(split / "model.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    state_a = torch.load(straight / "checkpoints" / "step-00000006.state.pt", weights_only=True)
    state_b = torch.load(split / "checkpoints" / "step-00000006.state.pt", weights_only=True)
    assert state_b["step"] == 6 and state_b["epoch"] == state_a["epoch"] == 3
    for index, entry in state_a["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.allclose(entry[name], state_b["optimizer"]["state"][index][name], atol=1e-7), (index, name)


def user_error(capsys, argv: list[str], contains: str, code: int = 1) -> None:
    """The CLI (in this process) fails with one `fusekit train: error:` line naming `contains`."""
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "fusekit train: error:" in err and contains in err, err


def test_an_existing_run_is_not_overwritten(manifest, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *COMMON, "--data", str(manifest), "--max-steps", "1", "--out", str(out)]) == 0
    user_error(capsys, ["train", *COMMON, "--data", str(manifest), "--out", str(out)], "--resume")


def test_sigterm_leaves_a_resumable_checkpoint_and_no_partial_files(manifest, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(HELPER), "train", *COMMON, "--data", str(manifest), "--epochs", "10000",
                                "--out", str(out)], stderr=subprocess.PIPE, env=env)
    log_file = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log_file.is_file() and len(log_file.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert not [p for p in out.rglob("*") if p.name.startswith(".fusekit-tmp-")]
    checkpoints = sorted((out / "checkpoints").glob("step-*.safetensors"))
    assert checkpoints and not (out / "model.safetensors").exists()
    step = int(checkpoints[-1].stem.split("-")[1])
    assert step == train_rows(out)[-1]["step"] >= 3
    state = torch.load(checkpoints[-1].with_suffix(".state.pt"), weights_only=True)
    assert state["step"] == step
    assert main(["train", "--resume", "--out", str(out), "-q", "--max-steps", str(step + 2)]) == 0
    assert train_rows(out)[-1]["step"] == step + 2


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(manifest, tmp_path):
    """Tolerance: losses agree to 1e-5 relative, weights to 1e-5 absolute (only the order of float sums differs)."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    args = [*COMMON, "--data", str(manifest), "--max-steps", "4"]
    assert main(["train", *args, "--out", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
                             str(HELPER), "train", *args, "--out", str(ddp)], capture_output=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    one, two = train_rows(single), train_rows(ddp)
    assert [row["step"] for row in one] == [row["step"] for row in two] == [1, 2, 3, 4]
    for x, y in zip(one, two):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5)
    run = json.loads((ddp / "run.json").read_text())
    assert run["world_size"] == 2
    a, b = weights(single / "model.safetensors"), weights(ddp / "model.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


@pytest.mark.slow
def test_a_trained_registered_model_runs_in_fuse(manifest, tmp_path):
    """TGIF (tiny config) trained two steps by the CLI; `fuse --weights` loads the result and writes a PNG."""
    from fusekit.io.images import read_image, write_image

    out = tmp_path / "tgif"
    assert main(["train", "--model", "tgif", "--task", "ivf", "--data", str(manifest), "--crop", "32", "--batch-size", "2",
                 "--max-steps", "2", "--set", "dim=8", "--set", "heads=2", "--set", f"text_dim={TEXT_DIM}",
                 "--set", "adapter_hidden=8", "--device", "cpu", "-q", "--out", str(out)]) == 0
    entry = json.loads(manifest.read_text().splitlines()[0])
    a, b = tmp_path / "a.png", tmp_path / "b.png"  # a 96 x 80 corner of the real pair keeps `fuse` quick
    write_image(a, read_image(entry["a"])[:80, :96])
    write_image(b, read_image(entry["b"])[:80, :96])
    fused = tmp_path / "fused.png"
    assert main(["fuse", str(a), str(b), "--task", "ivf", "--model", "tgif", "--weights", str(out / "model.safetensors"),
                 "--text", entry["text"], "--device", "cpu", "-q", "-o", str(fused)]) == 0
    assert read_image(fused).shape[:2] == (80, 96)


def test_validation_rows_use_the_metrics_of_the_evaluator(manifest, tmp_path):
    out = tmp_path / "val"
    val = ivf_manifest(tmp_path / "val-data", count=2, base=DATA / "IVF" / "TNO")
    assert main(["train", *COMMON, "--data", str(manifest), "--epochs", "1", "--val", str(val), "--val-crop", "64", "--out", str(out)]) == 0
    before, after = train_rows(out, "val")  # the initial weights, then after epoch 1
    assert (before["epoch"], before["step"], after["epoch"], after["step"]) == (0, 0, 1, 2)
    for row in (before, after):
        assert row["pairs"] == 2 and row["loss"] > 0
        assert sorted(row["metrics"]) == sorted(["EN", "SD", "SF", "AG", "VIF", "Qabf"])
    assert before["loss"] != after["loss"]


def test_missing_guidance_is_one_clear_error(tmp_path, capsys):
    user_error(capsys, ["train", *COMMON, "--data", str(DATA / "IVF" / "TNO"), "--out", str(tmp_path / "x")],
               "needs text features (--text)", code=2)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_compact_with_guidance_computed_on_the_fly_trains_and_fuses(tmp_path):
    """The bundled-weights recipe in small: compact, `stats` describer + `offline` encoder, cached per pair."""
    from fusekit.io.formats import read_text_features, sha256_file

    data, cache, out = DATA / "IVF" / "TNO", tmp_path / "cache", tmp_path / "compact"
    args = ["train", "--model", "compact", "--task", "ivf", "--data", str(data), "--describer", "stats", "--encoder", "offline",
            "--cache", str(cache), "--crop", "32", "--batch-size", "2", "--max-steps", "1", "--set", "channels=4",
            "--set", "context_channels=8", "--set", "heads=2", "--device", "cpu", "-q"]
    assert main([*args, "--out", str(out)]) == 0
    files = sorted(cache.rglob("*.safetensors"))
    assert len(files) == 2  # one per pair
    by_image = {read_text_features(f)[1]["image_sha256_a"]: f for f in files}
    _, meta = read_text_features(by_image[sha256_file(data / "ir" / "10.png")])
    assert meta["encoder"] == "offline" and meta["image_sha256_b"] == sha256_file(data / "vi" / "10.png")
    stamps = [f.stat().st_mtime_ns for f in files]
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not recomputed
    _, checkpoint = read_checkpoint(out / "model.safetensors")
    assert (checkpoint["text_encoder"], checkpoint["text_dim"]) == ("offline", "768")
    fused = tmp_path / "fused.png"
    assert main(["fuse", str(data / "ir" / "10.png"), str(data / "vi" / "10.png"), "--task", "ivf", "--model", "compact",
                 "--weights", str(out / "model.safetensors"), "--text", str(by_image[sha256_file(data / "ir" / "10.png")]),
                 "--device", "cpu", "-q", "-o", str(fused)]) == 0
    assert fused.is_file()


@pytest.mark.parametrize("change, code, contains", [
    (["--model", "mertens"], 1, "training-free"),
    (["--model", "tiny-tst"], 2, "did you mean 'tiny-test'"),
    (["--task", "mef", "--data", str(DATA / "IVF")], 1, "no MEF pairs"),
    (["--data", "/nonexistent/pairs"], 1, "training data not found"),
    (["--set", "nosuch=1"], 2, "no config field 'nosuch'"),
    (["--schedule", "step:x"], 2, "bad schedule"),
    (["--batch-size", "64"], 1, "only 8 training pairs"),
])
def test_bad_requests_are_one_line_errors(manifest, tmp_path, capsys, change, code, contains):
    # a repeated option takes its last value, so `change` overrides the common arguments
    user_error(capsys, ["train", *COMMON, "--data", str(manifest), "--out", str(tmp_path / "run"), *change], contains, code)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_features_of_another_width_than_the_model_are_refused(manifest, tmp_path, capsys):
    user_error(capsys, ["train", *COMMON, "--data", str(manifest), "--set", "text_dim=32", "--out", str(tmp_path / "run")],
               f"features are {TEXT_DIM}-d but the model's text_dim is 32")


def test_init_from_a_released_style_pth_and_bf16_autocast(manifest, tmp_path):
    """--init reads a DataParallel-style `{'model': state_dict}` .pth; with lr 0 the weights stay those."""
    from train_tiny import TinyConfig, TinyFusion

    torch.manual_seed(123)
    source = TinyFusion(TinyConfig())
    pth = tmp_path / "released.pth"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}, pth)
    out = tmp_path / "run"
    assert main(["train", *COMMON, "--data", str(manifest), "--init", str(pth), "--lr", "0", "--max-steps", "1",
                 "--precision", "bf16", "--out", str(out)]) == 0
    trained = weights(out / "model.safetensors")
    for key, value in source.state_dict().items():
        assert torch.equal(trained[key], value), key
    assert train_rows(out)[0]["loss"] > 0
