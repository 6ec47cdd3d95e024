"""A batch killed with SIGKILL mid-run and resumed with --skip-existing ends with the bytes of an uninterrupted run,
and no partial file ever carries a final name. Real MSRS pairs (640x480) through `fuse` (default model) and
`describe` (default backend), where each pair takes long enough for the kill to land between the first and the
last output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import DATA, run_fusekit

MSRS = DATA / "IVF" / "MSRS"
NAMES = sorted(path.stem for path in (MSRS / "ir").glob("*.png"))


def finals(folder) -> dict[str, bytes]:
    """Files under their final names (temp files of an interrupted write start with a dot)."""
    return {path.name: path.read_bytes() for path in folder.glob("*") if not path.name.startswith(".")}


@pytest.mark.parametrize("command", ["fuse", "describe"])
def test_sigkill_then_skip_existing_gives_the_uninterrupted_bytes(tmp_path, command):
    batch = [command, str(MSRS / "ir"), str(MSRS / "vi"), "--task", "ivf", "--device", "cpu"]
    # The reference describes without the cache that the killed and resumed runs share: resuming from cached
    # backend outputs must give the same bytes as describing from scratch.
    reference = run_fusekit(*batch, "-o", tmp_path / "reference", env={"FUSEKIT_CACHE": str(tmp_path / "cache-reference")})
    assert reference.returncode == 0, reference.stderr.decode()
    expected = finals(tmp_path / "reference")
    suffix = ".png" if command == "fuse" else ".json"
    assert sorted(expected) == [f"{name}{suffix}" for name in NAMES]

    out = tmp_path / "killed"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    env["FUSEKIT_CACHE"] = str(tmp_path / "cache")
    process = subprocess.Popen([sys.executable, "-m", "fusekit", *batch, "-o", str(out)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and finals(out):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    present = finals(out)
    assert 1 <= len(present) < len(NAMES)
    for name, data in present.items():  # whatever carries a final name is complete
        assert data == expected[name], name

    resumed = run_fusekit(*batch, "-o", out, "--skip-existing", "--summary", tmp_path / "summary.json",
                          env={"FUSEKIT_CACHE": str(tmp_path / "cache")})
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert finals(out) == expected
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["skipped"] >= len(present) and summary["skipped"] + summary["processed"] == len(NAMES)
    assert summary["failed"] == 0
    assert f"{summary['processed']} processed, {summary['skipped']} skipped, 0 failed" in resumed.stderr.decode()
