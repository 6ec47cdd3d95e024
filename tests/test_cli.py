"""CLI conventions shared by every subcommand: help, version, usage errors, `models`, man pages in sync."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, assert_user_error, run_fusekit

SUBCOMMANDS = ("describe", "encode-text", "encode-image", "fuse", "metrics", "train", "models", "datasets", "report")


def test_help_lists_every_subcommand():
    result = run_fusekit("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_real_help(name):
    result = run_fusekit(name, "--help")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    for option in ("--verbose", "--quiet", "--debug", "--progress"):
        assert option in out, (name, option)
    assert "Not available yet" not in out


def test_version():
    from fusekit import __version__

    result = run_fusekit("--version")
    assert result.returncode == 0 and result.stdout.decode().strip() == f"fusekit {__version__}"


def test_unknown_option_is_a_one_line_usage_error():
    stderr = assert_user_error(run_fusekit("metrics", "--no-such-option"), "metrics", code=2, contains="no such option")
    assert len(stderr.strip().splitlines()) == 1


def test_unknown_command_is_a_usage_error():
    result = run_fusekit("fusee")
    assert result.returncode == 2
    assert "fusekit: error:" in result.stderr.decode() and "Traceback" not in result.stderr.decode()


def test_models_json_lists_models_with_their_needs():
    result = run_fusekit("models", "--json")
    assert result.returncode == 0, result.stderr.decode()
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert {"name", "kind", "tasks", "needs", "bundled_weights"} <= set(row)
        assert row["kind"] in ("learned", "training-free")
        assert set(row["tasks"]) <= {"ivf", "mif", "mef", "mff"}
    assert result.stderr.decode() == ""


def test_man_pages_match_the_help():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_man.py"), "--check", str(REPO / "man")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
