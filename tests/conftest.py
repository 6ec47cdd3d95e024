"""Shared test fixtures: where the real data lives, and how to run the real CLI."""

from __future__ import annotations

import inspect
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


# Names by which a test reaches the shared data, and by which it starts the CLI in a subprocess.
SHARED_NAMES = ("SHARED", "DATA", "GOLDEN", "TRAIN", "pair_paths")
PROCESS_NAMES = ("run_fusekit", "subprocess")


def pytest_collection_modifyitems(config, items):
    """Tiers (README "Developing"): a test that starts processes (the CLI through `run_fusekit`, `subprocess`),
    itself or through a helper or fixture of its module, is marked ``slow``, so `make test-fast` leaves it out.
    Without the shared data every test that reads it is skipped with the reason, and the rest still run."""
    missing = not DATA.is_dir()
    skip = pytest.mark.skip(reason=f"needs the shared test data at {SHARED} (set FUSEKIT_SHARED to the shared/ folder)")
    for item in items:
        if _references(item, PROCESS_NAMES):
            item.add_marker(pytest.mark.slow)
        if missing and _references(item, SHARED_NAMES):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Without the shared data, a test module that reads it at import is skipped with the reason, not an error."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and not DATA.is_dir() and isinstance(collector, pytest.Module):
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), 0, f"Skipped: needs the shared test data at {SHARED} at import (set FUSEKIT_SHARED)")


def _references(item, names: tuple[str, ...]) -> bool:
    """Whether the test function, a fixture it uses, or a function they call (followed through the module's and
    its helper modules' globals) refers to one of `names`, or the test's parameters are paths into the shared data."""
    if "pair_paths" in names and any(_in_shared(value) for value in getattr(getattr(item, "callspec", None), "params", {}).values()):
        return True
    functions = [inspect.unwrap(item.function)]
    fixture_defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    functions += [inspect.unwrap(defs[-1].func) for name in item.fixturenames for defs in [fixture_defs.get(name)] if defs]
    seen: set = set()
    while functions:
        function = functions.pop()
        code = getattr(function, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        referred = _global_names(code)
        if referred & set(names):
            return True
        scope = getattr(function, "__globals__", {})
        if "pair_paths" in names and any(_in_shared(scope.get(name)) for name in referred):
            return True  # a module constant such as MSRS = DATA / "IVF" / "MSRS"
        called = [inspect.unwrap(scope[name]) for name in referred if callable(scope.get(name))]
        functions += [function for function in called if inspect.isfunction(function) and _is_test_helper(function)]
    return False


def _in_shared(value) -> bool:
    """A path into the shared data, or a tuple / list of them."""
    if isinstance(value, (tuple, list)):
        return any(_in_shared(part) for part in value)
    return isinstance(value, (str, Path)) and str(value).startswith(str(SHARED))


def _global_names(code) -> set[str]:
    """Global names a code object and the functions nested in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def _is_test_helper(function) -> bool:
    """Functions defined under tests/ (not fusekit's or a library's, whose insides say nothing about the test)."""
    return str(Path(inspect.getfile(function)).resolve()).startswith(str(Path(__file__).resolve().parent))


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
