"""The numbers the seed papers report (fusekit/data/paper_results.json, schema ``fusekit.paper-results/1.0``), and
the rows of them that belong beside a report's own: same test set, same metric convention.

Rows that carry the same method and the same numbers in several papers (FILM's competitors reappear in TGIF and
MTIF) are shown once, citing every table they appear in; where the numbers differ (TeSG prints three decimals)
each paper keeps its own row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ...errors import FusekitError, UsageError

SCHEMA = "fusekit.paper-results/1.0"


@dataclass
class PaperRow:
    """One method's numbers in one or more papers' tables for one test set."""

    method: str
    dataset: str
    convention: str
    values: dict[str, float]
    decimals: dict[str, int] = field(default_factory=dict)  # as printed in the paper (6.70 → 2)
    sources: list[str] = field(default_factory=list)  # "FILM Table 1", ...
    citations: list[str] = field(default_factory=list)
    papers: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return "; ".join(self.sources)

    @property
    def citation(self) -> str:
        return "; ".join(dict.fromkeys(self.citations))


@lru_cache(maxsize=1)
def load() -> dict:
    """The packaged paper-results document."""
    text = (resources.files("fusekit") / "data" / "paper_results.json").read_text(encoding="utf-8")
    document = json.loads(text)
    if document.get("schema", "").partition("/")[0] != SCHEMA.partition("/")[0]:
        raise FusekitError(f"packaged paper results have schema {document.get('schema')!r}, expected {SCHEMA}", "reinstall fusekit")
    return document


def paper_names() -> list[str]:
    return list(load()["papers"])


def rows_for(dataset: str, convention: str, papers: list[str] | None = None, kind: str = "comparison") -> tuple[list[PaperRow], list[str]]:
    """(rows of `dataset` in `convention`, notes about rows left out because their convention differs)."""
    document = load()
    known = {name.lower(): name for name in document["papers"]}
    wanted = None
    if papers is not None:
        unknown = [p for p in papers if p.lower() not in known]
        if unknown:
            raise UsageError(f"unknown paper {unknown[0]!r}", f"use one of {', '.join(document['papers'])}, or none")
        wanted = {known[p.lower()] for p in papers}
    merged: list[PaperRow] = []
    other: dict[str, set[str]] = {}
    for table in document["tables"]:
        if table["dataset"].lower() != dataset.lower() or table["kind"] != kind:
            continue
        if wanted is not None and table["paper"] not in wanted:
            continue
        if table["convention"] != convention:
            other.setdefault(table["convention"], set()).add(f"{table['paper']} {table['table']}")
            continue
        for row in table["rows"]:
            source = f"{table['paper']} {table['table']}"
            same = next((m for m in merged if m.method == row["method"] and _agree(m.values, row["values"])), None)
            if same is None:
                same = PaperRow(row["method"], table["dataset"], convention, {})
                merged.append(same)
            same.values.update(row["values"])
            for name in row["values"]:
                same.decimals[name] = max(same.decimals.get(name, 0), table["decimals"][name])
            same.sources.append(source)
            same.citations.append(table["citation"])
            same.papers.append(table["paper"])
    notes = [f"{', '.join(sorted(tables))} {'reports' if len(tables) == 1 else 'report'} {dataset} in the {name} convention; "
             f"run with --convention {name} to compare with {'it' if len(tables) == 1 else 'them'}" for name, tables in sorted(other.items())]
    return merged, notes


def _agree(a: dict[str, float], b: dict[str, float]) -> bool:
    common = set(a) & set(b)
    return bool(common) and all(a[name] == b[name] for name in common)


def metrics_for(rows: list[PaperRow]) -> list[str]:
    """The metrics the rows report, in the order the first paper lists them."""
    names: list[str] = []
    for row in rows:
        names += [name for name in row.values if name not in names]
    return names
