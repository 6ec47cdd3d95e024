"""User-facing errors.

A `FusekitError` is a mistake the user can fix (bad input, missing weights, wrong file kind). The CLI prints it as
one line, ``fusekit <command>: error: <what went wrong> (<what to do>)``, and exits 1 — no traceback unless
``--debug``. Anything else escaping a command is a bug and is shown with its traceback under ``--debug``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class FusekitError(Exception):
    """A problem the user can fix: `message` says what is wrong, `hint` what to do about it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(FusekitError):
    """Arguments that cannot work together; exits with code 2 like a parsing error."""
