"""Help text shown as written: typer renders help through rich, whose markup would eat bracketed words.

"Epochs [default: preset]" would show as "Epochs ." and "[tokens, dim]" would vanish, since rich reads ``[...]``
as a style tag. Every option's, argument's and command's help goes through `escaped` once, where `command` and
`with_common_options` register it, so the source text is what `--help` (and the man pages) show.
"""

from __future__ import annotations

import copy
import typing
from typing import Annotated


def escaped(text: str | None) -> str | None:
    from rich.markup import escape

    return escape(text) if text else text


def as_written(text: str) -> str:
    """The source text of help that went through `escaped` (for readers other than rich, e.g. the man pages)."""
    return text.replace("\\[", "[")


def with_escaped_help(annotation):
    """`annotation` (``Annotated[T, typer.Option(...)]``) with a copy of its option whose help is escaped.

    A copy, because option types shared by several commands (cli.options) must not be escaped twice."""
    from typer.models import ParameterInfo

    if typing.get_origin(annotation) is not Annotated:
        return annotation
    base, *extras = typing.get_args(annotation)
    fixed = []
    for extra in extras:
        if isinstance(extra, ParameterInfo) and extra.help:
            extra = copy.copy(extra)
            extra.help = escaped(extra.help)
        fixed.append(extra)
    return Annotated.__class_getitem__((base, *fixed))
