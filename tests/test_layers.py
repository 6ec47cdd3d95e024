"""Imports only point down (README "Developing", DESIGN.md "Layers"), checked from the source of every module.

cli → app → models | guidance (peers: neither imports the other) → metrics → io · registry · errors · log ·
devices · hub · version. Inside the bottom layer, `fusekit.io` imports nothing of fusekit but `errors`, `log` and
`version`. Function-level imports count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fusekit"
RANKS = {"__main__": 6, "cli": 5, "app": 4, "models": 3, "guidance": 3, "metrics": 2}
BOTTOM = ("io", "registry", "errors", "log", "devices", "hub", "version", "weights", "")  # "" = the package root
IO_MAY_IMPORT = {"io", "errors", "log", "version"}


def part_of(module: str) -> str:
    """The top-level part of fusekit a dotted module name belongs to ("" for the package root itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    name = parts[1]
    exists = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()
    return name if exists else ""  # `from fusekit import __version__` imports the root


def rank(part: str) -> int:
    return RANKS.get(part, 1)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every fusekit import in a file, at any depth (function-level too)."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                names = [f"{base}.{node.module}"] if node.module else [f"{base}.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found if name == "fusekit" or name.startswith("fusekit.")]


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        own = part_of(module) if path.name != "__init__.py" or path.parent != PACKAGE else ""
        for line, target in imports_of(path):
            other = part_of(target)
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
            if other == own:
                continue
            if own == "io" and other not in IO_MAY_IMPORT:
                problems.append(f"{where} (io imports nothing of fusekit but errors, log, version)")
            elif rank(other) > rank(own):
                problems.append(f"{where} (an upward import: {own or 'the root'} is below {other})")
            elif rank(other) == rank(own) and own not in BOTTOM:
                problems.append(f"{where} ({own} and {other} are peers and never import each other)")
    return problems


def test_imports_only_point_down():
    assert violations() == []


@pytest.mark.parametrize("source, problem", [
    ("from ..guidance.kinds import KINDS\n", "peers"),
    ("def lazy():\n    from ..app import fuse\n", "upward"),
    ("from fusekit.cli import options\n", "upward"),
])
def test_the_checker_sees_upward_peer_and_function_level_imports(tmp_path, monkeypatch, source, problem):
    """A planted bad import in a copy of the package is reported (so the test above can fail)."""
    import shutil

    copy = tmp_path / "fusekit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    (copy / "models" / "planted.py").write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    found = violations()
    assert len(found) == 1 and "models/planted.py" in found[0] and problem in found[0]


def test_io_may_import_only_errors_log_and_version(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "fusekit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    (copy / "io" / "planted.py").write_text("from ..devices import resolve_device\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    found = violations()
    assert len(found) == 1 and "io/planted.py" in found[0]
