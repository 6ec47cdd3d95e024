"""Shared test fixtures: where the real data lives, and how to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSEKIT_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
GOLDEN = SHARED / "golden"
TRAIN = SHARED / "train"

# Tests never touch the network, and keep CPU threads low on the shared 2-core machines.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_configure(config):
    if not DATA.is_dir():
        raise pytest.UsageError(f"test data not found at {DATA}; set FUSEKIT_SHARED to the shared/ folder")


def pair_paths(task: str, dataset: str, name: str) -> tuple[Path, Path]:
    """The two source images of a DEV-set pair, in fusekit's A/B order for the task."""
    folders = {"IVF": ("ir", "vi"), "MIF": ("mri", "other"), "MEF": ("over", "under"), "MFF": ("a", "b")}[task]
    base = DATA / task / dataset
    return base / folders[0] / f"{name}.png", base / folders[1] / f"{name}.png"


def run_fusekit(*args: str, input: bytes | None = None, env: dict | None = None, cwd: str | Path | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `fusekit` command (as `python -m fusekit`) and capture its bytes."""
    full_env = dict(os.environ)
    full_env.pop("FUSEKIT_DEBUG", None)
    for key in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"):
        full_env.pop(key, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fusekit", *map(str, args)],
        input=input, capture_output=True, env=full_env, cwd=cwd, timeout=timeout,
    )


def assert_user_error(result: subprocess.CompletedProcess, command: str, code: int = 1, contains: str = "") -> str:
    """The documented failure shape: one line `fusekit <command>: error: ...` on stderr, no traceback."""
    stderr = result.stderr.decode()
    assert result.returncode == code, (result.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if f"fusekit {command}: error:" in line]
    assert lines, stderr
    assert contains.lower() in stderr.lower(), stderr
    return stderr
