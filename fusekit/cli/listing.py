"""Help texts and ``--list`` output generated from the registries, so no command hand-types a backend list."""

from __future__ import annotations

import typer

from ..registry import Registry

# What a `--list` option says in `--help`.
LIST_HELP = "List the {what} (fusekit's and installed plugins'), then exit."


def known(registry: Registry) -> str:
    """fusekit's own names, for an option's help: "stats, blip2, florence2, sam, llm" (plugins: see --list)."""
    return ", ".join(registry.names(plugins=False))


def summaries(registry: Registry) -> str:
    """One sentence per built-in entry, for a command's help: "stats = ...; blip2 = captions (default model X)"."""
    parts = []
    for name in registry.names(plugins=False):
        info = registry.info(name)
        model = f" (default model {info['model']})" if info.get("model") else ""
        parts.append(f"{name} = {info.get('summary', '')}{model}")
    return "; ".join(parts)


def print_listing(registry: Registry) -> None:
    """The ``--list`` output on stdout: one line per entry, tab-separated (name, aliases, default model, from,
    summary) so it reads as a table and pipes into cut/awk."""
    typer.echo("\t".join(("name", "aliases", "default model", "from", "summary")))
    for row in registry.listing():
        typer.echo("\t".join((row["name"], ",".join(row["aliases"]) or "-", row["model"] or "-", row["plugin"] or "fusekit",
                              row["summary"])))
