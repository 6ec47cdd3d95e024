"""Write one man page per subcommand (roff) from the CLI's own help, so `man/` never drifts from `--help`.

Usage: python tools/make_man.py man/            (write the pages)
       python tools/make_man.py --check man/    (exit 1 if any page differs; used by the tests)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _escape(text: str) -> str:
    from fusekit.cli.markup import as_written

    text = as_written(text).replace("\\", "\\\\").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines())


def _commands():
    """(full name, click command) for every subcommand, nested groups flattened ("models import")."""
    import typer

    from fusekit.cli import _load_commands, app

    _load_commands()
    root = typer.main.get_command(app)
    found = [("fusekit", root)]
    pending = [("fusekit", root)]
    while pending:
        prefix, group = pending.pop()
        for name, sub in sorted(getattr(group, "commands", {}).items()):
            full = f"{prefix} {name}"
            found.append((full, sub))
            if getattr(sub, "commands", None):
                pending.append((full, sub))
    return found


def _synopsis(full: str, cmd) -> str:
    parts = [f"\\fB{full}\\fR", "[\\fIOPTIONS\\fR]"]
    for param in cmd.params:
        if param.param_type_name == "argument":
            name = getattr(param, "human_readable_name", param.name).upper()
            parts.append(f"\\fI{name}\\fR..." if param.nargs == -1 else f"\\fI{name}\\fR")
    if getattr(cmd, "commands", None):
        parts.append("\\fICOMMAND\\fR")
    return " ".join(parts)


def render(full: str, cmd) -> str:
    from fusekit import __version__

    title = full.replace(" ", "-")
    help_text = (cmd.help or "").strip()
    summary = help_text.splitlines()[0] if help_text else ""
    lines = [
        f'.TH "{title.upper()}" 1 "" "fusekit {__version__}" "fusekit manual"',
        ".SH NAME",
        f"{_escape(title)} \\- {_escape(summary)}",
        ".SH SYNOPSIS",
        _synopsis(full, cmd),
        ".SH DESCRIPTION",
        _escape(help_text) or "See OPTIONS.",
    ]
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    options = [p for p in cmd.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    if arguments:
        lines.append(".SH ARGUMENTS")
        for param in arguments:
            lines += [".TP", f"\\fI{getattr(param, 'human_readable_name', param.name).upper()}\\fR", _escape(getattr(param, "help", None) or "")]
    if options:
        lines.append(".SH OPTIONS")
        for param in options:
            names = ", ".join(f"\\fB{_escape(opt)}\\fR" for opt in [*param.opts, *param.secondary_opts])
            text = getattr(param, "help", None) or ""
            default = param.default
            if param.show_default is not False and default not in (None, False, (), []) and not callable(default):
                text += f" [default: {default}]"
            lines += [".TP", names, _escape(text)]
    subcommands = getattr(cmd, "commands", None)
    if subcommands:
        lines.append(".SH COMMANDS")
        for name, sub in sorted(subcommands.items()):
            lines += [".TP", f"\\fB{name}\\fR", _escape((sub.help or "").strip().splitlines()[0] if sub.help else "")]
    lines += [".SH SEE ALSO", "fusekit(1); README.md and docs/ in the fusekit source tree."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    pages = {f"{full.replace(' ', '-')}.1": render(full, cmd) for full, cmd in _commands()}
    if args.check:
        stale = [name for name, text in pages.items() if not (args.folder / name).is_file() or (args.folder / name).read_text() != text]
        extra = sorted(p.name for p in args.folder.glob("*.1") if p.name not in pages)
        for name in stale:
            print(f"man/{name} is out of date (run: make man)")
        for name in extra:
            print(f"man/{name} has no command any more (delete it)")
        return 1 if stale or extra else 0
    args.folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (args.folder / name).write_text(text)
    for path in args.folder.glob("*.1"):
        if path.name not in pages:
            path.unlink()
    print(f"wrote {len(pages)} man pages to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
