"""Checks the learned fusion models' tests share (TGIF, MTIF, TeSG, MGFusion): real-image inputs, the gradient
check, the `fusekit fuse` round trip and the tiny training runs' inputs and logs.

Each model's test file builds its own tiny model and guidance; these helpers hold what is the same for all of them,
so a change to the CLI or the log format is made once.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import torch
from conftest import REPO, TRAIN, pair_paths, run_fusekit

from fusekit.io.images import read_image, to_grey, write_image
from fusekit.models.checkpoints import load_model, save_checkpoint


def grey_tensors(paths) -> tuple[torch.Tensor, ...]:
    """The whole images as grey float32 [1, 1, H, W] tensors in [0, 1] (fusekit's grey, as `fuse --grey` sees them)."""
    return tuple(torch.from_numpy(to_grey(read_image(path)) / np.float32(255))[None, None] for path in paths)


def grey_window(paths, top: int, left: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
    """The `height` × `width` window at (`top`, `left`) of each image, as grey [1, 1, H, W] tensors in [0, 1]."""
    return tuple(x[..., top:top + height, left:left + width].contiguous() for x in grey_tensors(paths))


def grey_crop(task: str, dataset: str, name: str, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The DEV pair's top-left `height` × `width` window as grey [1, 1, H, W] tensors in [0, 1]."""
    return grey_window(pair_paths(task, dataset, name), 0, 0, height, width)


def assert_every_parameter_learns(model: torch.nn.Module) -> None:
    """After `backward()`: every parameter got a non-zero gradient (none is cut off from the loss)."""
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def assert_checkpoint_round_trip(tmp_path, name: str, model: torch.nn.Module, task: str, a: torch.Tensor,
                                 b: torch.Tensor, guidance: dict, **save_options) -> tuple:
    """Saves `model` as `tmp_path`/`name`.safetensors, loads it back with `load_model` and asserts the loaded model
    fuses (a, b) with `guidance` exactly as `model` does. Returns (weights path, that output, the loaded metadata)."""
    weights = tmp_path / f"{name}.safetensors"
    save_checkpoint(weights, name, model, model.config, task, **save_options)
    loaded, metadata = load_model(name, weights, task)
    with torch.inference_mode():
        expected = model(a, b, **guidance)
        assert torch.equal(loaded(a, b, **guidance), expected)
    return weights, expected, metadata


def assert_fuse_cli_matches(tmp_path, paths, task: str, model: str, weights, guidance: list[str],
                            expected: torch.Tensor) -> None:
    """`fusekit fuse --grey` with the checkpoint `weights` and the `guidance` options writes exactly `expected`
    ([1, 1, H, W] in [0, 1], the in-process output) rounded to 8 bits."""
    out = tmp_path / "fused.png"
    result = run_fusekit("fuse", *map(str, paths), "--task", task, "--model", model, "--weights", str(weights),
                         *guidance, "--grey", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    fused = read_image(out)
    want = np.round(expected[0, 0].clamp(0, 1).numpy() * 255).astype(np.uint8)
    assert fused.shape == want.shape
    assert np.array_equal(fused, want)


def training_pair(tmp_path, dataset: str, folders: tuple[str, str], name: str,
                  window: tuple[int, int, int, int]) -> str:
    """A manifest of one real training pair cut to a fixed window (no random crop: the loss moves only by training)."""
    top, left, height, width = window
    entry = {"name": name}
    for role, folder in zip("ab", folders):
        image = read_image(TRAIN / dataset / folder / f"{name}.png")
        path = tmp_path / f"{name}_{role}.png"
        write_image(path, image[top:top + height, left:left + width])
        entry[role] = str(path)
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text(json.dumps(entry) + "\n")
    return str(manifest)


# Two shared/train MSRS pairs and the 64x64 window cut from each for the in-process training runs.
TRAINING_NAMES = ("00032N", "00036N")
TRAINING_WINDOW = (slice(200, 264), slice(300, 364))


def ivf_training_windows(data) -> tuple[str, ...]:
    """Writes the windows of the `TRAINING_NAMES` pairs as a data folder (`data`/ir, `data`/vi); returns the names."""
    for name in TRAINING_NAMES:
        for side in ("ir", "vi"):
            image = read_image(TRAIN / "IVF" / "MSRS" / side / f"{name}.png")
            write_image(data / side / f"{name}.png", image[TRAINING_WINDOW])
    return TRAINING_NAMES


def log_rows(run) -> list[dict]:
    """Every row of a training run's log.jsonl, in order."""
    return [json.loads(line) for line in open(f"{run}/log.jsonl")]


def logged_losses(run) -> list[float]:
    """The training losses a run logged, in step order."""
    return [row["loss"] for row in log_rows(run) if row["kind"] == "train"]


def assert_matches_plain_transcription(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor, guidance: dict) -> None:
    """`model` (tgif or mtif, paper-default config) computes what the plain transcription in
    benchmarks/tgif_mtif_speed.py computes with the same weights, to 1e-5, with and without autograd (fusekit's
    blocks take different paths). The weights are perturbed first, so that no norm, temperature or PReLU sits at
    its initial value and the output is not near constant."""
    spec = importlib.util.spec_from_file_location("tgif_mtif_speed", REPO / "benchmarks" / "tgif_mtif_speed.py")
    transcriptions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(transcriptions)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    plain = {"TGIF": transcriptions.PlainTGIF, "MTIF": transcriptions.PlainMTIF}[type(model).__name__](model.config)
    plain.load_state_dict(transcriptions.plain_state(model.state_dict()))
    with torch.no_grad():
        want = plain.eval()(a, b, **guidance)
        assert want.std() > 0.01
        assert (model.eval()(a, b, **guidance) - want).abs().max().item() < 1e-5
    with torch.enable_grad():
        assert (model(a, b, **guidance) - want).abs().max().item() < 1e-5
