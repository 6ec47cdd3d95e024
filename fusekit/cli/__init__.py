"""The `fusekit` command line: one typer app, one module per subcommand, conventions applied once here.

Every subcommand is declared with `command` (below), which adds the options all commands share (``-v/-q``,
``--debug``, ``--progress/--no-progress``) and sets up logging before the command body runs. `main` turns
errors into the documented one-line messages and exit codes: 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import traceback
import typing
from typing import Annotated, Optional

import typer

from .. import __version__, log
from ..errors import EXIT_FAILURE, EXIT_USAGE, FusekitError, UsageError
from ..memory import keep_freed_memory
from .markup import escaped, with_escaped_help

app = typer.Typer(
    name="fusekit",
    help=(
        "Composable tools for vision-language-model guided image fusion: describe images, encode the text, "
        "fuse pairs, train models and report metrics that match published papers."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_COMMON = [
    inspect.Parameter(
        "verbose", inspect.Parameter.KEYWORD_ONLY, default=0,
        annotation=Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr (-vv: debug).")],
    ),
    inspect.Parameter(
        "quiet", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")],
    ),
    inspect.Parameter(
        "debug", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--debug", help="Show tracebacks (also FUSEKIT_DEBUG=1).")],
    ),
    inspect.Parameter(
        "progress", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bars on stderr [default: only on a terminal].")],
    ),
]


def debug_from_environment() -> bool:
    return os.environ.get("FUSEKIT_DEBUG", "").strip().lower() in ("1", "true", "yes")


def with_common_options(label: str):
    """Add the shared options to `func`'s signature and configure logging (prefix ``fusekit <label>``) before it runs."""

    def decorate(func):
        hints = typing.get_type_hints(func, include_extras=True)
        parameters = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in inspect.signature(func).parameters.values()]
        parameters = [p.replace(annotation=with_escaped_help(p.annotation)) for p in parameters + _COMMON]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            verbose, quiet = kwargs.pop("verbose"), kwargs.pop("quiet")
            debug, progress = kwargs.pop("debug"), kwargs.pop("progress")
            debug = debug or debug_from_environment()
            log.configure(label, -1 if quiet else (max(verbose, 2) if debug else verbose), progress, debug)
            if "device" in kwargs:  # a --device no machine has is refused even where no model runs
                from ..devices import check_device

                check_device(kwargs["device"])
            result = func(*args, **kwargs)
            if isinstance(result, int) and result:
                raise typer.Exit(result)

        wrapper.__signature__ = inspect.Signature(parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def command(name: str, group: typer.Typer | None = None, label: str | None = None, **options):
    """Register `func` as subcommand `name` (of `group`, default the root app) with the shared options.

    `label` is how messages name the command (default `name`; e.g. "models import" for a nested one).
    """

    def decorate(func):
        help_text = escaped(options.pop("help", None) or inspect.getdoc(func))
        (group or app).command(name, help=help_text, **options)(with_common_options(label or name)(func))
        return func

    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fusekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Composable tools for vision-language-model guided image fusion."""


# Command name → its module in this package, one line each, in `fusekit --help` order: a new command is one
# module plus one line here.
COMMAND_MODULES = {
    "describe": "describe",
    "encode-text": "encode_text",
    "encode-image": "encode_image",
    "semantics": "semantics",
    "fuse": "fuse",
    "metrics": "metrics",
    "train": "train",
    "models": "models",
    "datasets": "datasets",
    "report": "report",
}


def _load_commands(argv: list[str] | None = None) -> None:
    """Import the command modules, which register themselves: only the one `argv` names when it names one (so a
    command starts without building the others), else all of them (top-level help, a misspelt command)."""
    named = next((arg for arg in argv or () if not arg.startswith("-")), None)
    for name in [named] if named in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{COMMAND_MODULES[name]}")


def _is(error: BaseException, class_name: str) -> bool:
    """Whether `error` is a click-style exception of that class name.

    Matched by name because typer ≥ 0.20 ships its own copy of click, so the classes differ between versions.
    """
    return any(cls.__name__ == class_name for cls in type(error).__mro__)


def _command_path(error: BaseException) -> str:
    ctx = getattr(error, "ctx", None)
    path = getattr(ctx, "command_path", "") or "fusekit"
    return "fusekit" + path[path.index(" "):] if " " in path else "fusekit"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (and exits with it when run as a script)."""
    # PyTorch's OpenMP threads sleep between parallel regions instead of spinning (read when torch loads, which is
    # later): on a CPU shared with other jobs spinning threads wait for descheduled ones, and FILM's banded blocks
    # (many short regions) ran ~10x slower in wall time at 2 threads (benchmarks/film_speed.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # freed blocks up to 128 MiB (a full-resolution feature map) are reused, not unmapped and zeroed again:
    # `fusekit fuse --model film` spent ~1 s of its ~7 s CPU time in the kernel doing that, ~0.4 s with it, for
    # ~45 MiB more peak memory (benchmarks/film_speed.py)
    keep_freed_memory()
    _load_commands(sys.argv[1:] if argv is None else argv)
    cli = typer.main.get_command(app)
    try:
        # Without standalone mode click returns (not raises) the code of a `typer.Exit`, e.g. a batch's 1.
        returned = cli.main(args=argv, prog_name="fusekit", standalone_mode=False)
        code = returned if isinstance(returned, int) else 0
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`); nothing more to say.
        sys.stderr.close()
        code = EXIT_FAILURE
    except KeyboardInterrupt:
        print("fusekit: interrupted", file=sys.stderr)
        code = 130
    except UsageError as error:
        _show_traceback()
        log.error(str(error))
        code = EXIT_USAGE
    except FusekitError as error:
        _show_traceback()
        log.error(str(error))
        code = EXIT_FAILURE
    except Exception as error:
        if _is(error, "Exit"):
            code = error.exit_code
        elif _is(error, "Abort"):
            print("fusekit: interrupted", file=sys.stderr)
            code = 130
        elif _is(error, "UsageError"):
            prefix = _command_path(error)
            print(f"{prefix}: error: {error.format_message()} (see '{prefix} --help')", file=sys.stderr)
            code = EXIT_USAGE
        elif _is(error, "ClickException"):
            print(f"{_command_path(error)}: error: {error.format_message()}", file=sys.stderr)
            code = EXIT_FAILURE
        else:  # a bug: say so in one line, traceback with --debug
            _show_traceback()
            log.error(f"internal error: {type(error).__name__}: {error} (re-run with --debug and report it)")
            code = EXIT_FAILURE
    if argv is None:
        sys.exit(code)
    return code


def _show_traceback() -> None:
    if log.settings.debug or debug_from_environment():
        traceback.print_exc()
