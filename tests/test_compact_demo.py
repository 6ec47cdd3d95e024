"""`make demo` (examples/demo.sh): the offline pipeline on the example pair of every task, bundled model and
baseline side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from fusekit.models.baselines import DEFAULT


@pytest.mark.slow
def test_demo_runs_offline_and_reports_both_models(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # A relative output folder, as `make demo` passes it.
    result = subprocess.run(["sh", str(REPO / "examples" / "demo.sh"), "demo"], capture_output=True, env=env,
                            timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert "demo/<task>/" in result.stderr.decode()  # says where the outputs went
    document = json.loads((out / "metrics.json").read_text())
    names = [row["name"] for row in document["rows"]]
    assert len(names) == 8 and not document["failed"]
    for task, baseline in DEFAULT.items():
        for model in ("compact", baseline):
            rows = [row for row in document["rows"]
                    if row["name"].startswith(f"{task} ") and row["name"].endswith(f" {model}")]
            assert len(rows) == 1, (task, model, names)
            assert (tmp_path / rows[0]["fused"]).is_file()  # relative to where the demo ran
            assert all(rows[0][metric] is not None for metric in ("EN", "SD", "SF", "AG", "VIF", "Qabf"))
            assert f"{task} " in result.stdout.decode() and model in result.stdout.decode()  # the printed table
