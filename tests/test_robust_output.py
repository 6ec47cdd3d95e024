"""Issue 17 items 3 and 4: what a person reads. The metrics table on an 80-column terminal (through a real
pseudo-terminal), `fusekit models` in a pipe, and option help that rich markup must not eat."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import fcntl
import pytest
from conftest import GOLDEN, REPO, pair_paths, run_fusekit

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_terminal(*args: str, columns: int = 80, timeout: float = 300) -> str:
    """Run `fusekit` with stdout and stderr on a pseudo-terminal `columns` wide; its text without colour codes."""
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm"
    process = subprocess.Popen([sys.executable, "-m", "fusekit", *args], stdin=subprocess.DEVNULL, stdout=child_fd,
                               stderr=child_fd, env=env, close_fds=True)
    os.close(child_fd)
    chunks = []
    while True:
        ready, _, _ = select.select([main_fd], [], [], timeout)
        if not ready:
            process.kill()
            pytest.fail("fusekit did not finish on the terminal")
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    assert process.wait(timeout) == 0, b"".join(chunks).decode(errors="replace")
    return ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))


@pytest.mark.parametrize("convention", ["evaluator", "vifb"])
def test_metrics_table_fits_80_columns_without_cutting_a_number(tmp_path, convention):
    fused_dir = GOLDEN / "metrics" / "fused" / "IVF" / "MSRS"
    fused = fused_dir / "00028N_mean.png"
    ir, vi = pair_paths("IVF", "MSRS", "00028N")
    text = run_in_terminal("metrics", str(fused), str(ir), str(vi), "-c", convention)
    lines = text.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, "\n" + text
    assert "…" not in text, text
    scored = run_fusekit("metrics", fused, ir, vi, "-c", convention, "--json")
    document = json.loads(scored.stdout)
    for name in document["metrics"]:
        assert re.search(rf"\b{re.escape(name)} [↑↓]", text), (name, text)
        value = document["rows"][0][name]
        shown = "—" if value is None else (f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}")
        assert shown in text, (name, shown, text)


def test_models_in_a_pipe_is_tab_separated():
    result = run_fusekit("models")
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["name", "kind", "tasks"]
    rows = [line.split("\t") for line in lines[1:]]
    assert rows and all(len(row) == len(header) for row in rows)
    assert "compact" in {row[0] for row in rows}
    assert not any(character in result.stdout.decode() for character in "│┃━─")


def test_models_on_a_terminal_is_a_table():
    text = run_in_terminal("models", columns=120)
    assert "compact" in text and "\t" not in text


# ------------------------------------------------------------------------------------------- 4. help text


def _commands():
    import typer.main

    from fusekit.cli import _load_commands, app

    _load_commands()
    root = typer.main.get_command(app)

    def walk(group, path):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*path, name])
                if getattr(command, "callback", None):
                    yield [*path, name], command
            else:
                yield [*path, name], command

    return list(walk(root, []))


def _plain(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path, command", _commands(), ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_every_option_help_is_shown_as_written(path, command):
    """Rich markup must not eat bracketed words ("[default: preset]", "[tokens, dim]") from any option's help."""
    from fusekit.cli.markup import as_written

    result = subprocess.run([sys.executable, "-m", "fusekit", *path, "--help"], capture_output=True, cwd=REPO,
                            env={**os.environ, "COLUMNS": "2000", "TERMINAL_WIDTH": "2000", "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr.decode()
    shown = _plain(ANSI.sub("", result.stdout.decode()))
    for parameter in command.params:
        text = getattr(parameter, "help", None)  # as registered: the source text with rich's escapes (\\[)
        if text:
            source = as_written(text)
            assert _plain(source) in shown, (parameter.name, source)
    if "[" in (command.help or ""):  # e.g. encode-image's "image_embed_a and image_embed_b [dim]"
        assert _plain(as_written(command.help)) in shown, command.help
