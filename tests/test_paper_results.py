"""The papers' numbers as data (fusekit/data/paper_results.json): every table the issue names is there with a
citation and a convention, and every row's numbers, printed with the paper's decimals, appear in that order in the
paper's own text (papers/ in the shared data), so a mistyped value cannot pass."""

from __future__ import annotations

import re

from conftest import SHARED
from fusekit.app.report import papers
from fusekit.metrics.registry import METRICS

TEXTS = {"FILM": "000_99e8ac5b8296e1e8.txt", "TGIF": "001_db39d34d8658b919.txt", "MGFusion": "002_c7070c69fd7d3048.txt",
         "TeSG": "003_8b949949111bec2e.txt", "MTIF": "004_2e9ffbde60b5462e.txt"}


def test_every_table_the_issue_names_with_citation_and_convention():
    document = papers.load()
    assert document["schema"] == "fusekit.paper-results/1.0"
    found = {(t["paper"], t["table"]) for t in document["tables"]}
    expected = {("FILM", f"Table {n}") for n in range(1, 6)} | {("TGIF", f"Table {n}") for n in range(1, 6)}
    expected |= {("MGFusion", f"Table {n}") for n in range(1, 5)} | {("TeSG", "Table 1"), ("TeSG", "Table 4")}
    expected |= {("MTIF", f"Table {n}") for n in range(1, 6)} | {("MTIF", "Table A1"), ("MTIF", "Table A2")}
    assert found == expected
    assert {(e["paper"], e["table"]) for e in document["left_out"]} == {("TeSG", "Table 2"), ("TeSG", "Table 3")}
    for table in document["tables"]:
        assert table["citation"] == document["papers"][table["paper"]]["citation"]
        assert table["convention"] == ("vifb" if table["paper"] == "MGFusion" else "evaluator")
        assert all(name in METRICS for name in table["metrics"])
        assert all(set(row["values"]) == set(table["metrics"]) for row in table["rows"])
    film_datasets = {t["dataset"] for t in document["tables"] if t["paper"] == "FILM" and t["kind"] == "comparison"}
    assert film_datasets == {"MSRS", "M3FD", "RoadScene", "Harvard", "SICE", "MEFB", "RealMFF", "Lytro"}
    assert sum(len(t["rows"]) * len(t["metrics"]) for t in document["tables"]) == 1628


def test_every_row_appears_in_the_paper_text():
    texts = {paper: re.sub(r"</?(b|u)>", "", (SHARED / "papers" / name).read_text()) for paper, name in TEXTS.items()}
    for table in papers.load()["tables"]:
        for row in table["rows"]:
            printed = "\t".join(f"{row['values'][m]:.{table['decimals'][m]}f}" for m in table["metrics"])
            assert printed in texts[table["paper"]], (table["paper"], table["table"], table["dataset"], row["method"], printed)


def test_rows_for_a_test_set_merge_repeats_and_keep_conventions_apart():
    rows, notes = papers.rows_for("MSRS", "evaluator")
    cddfuse = [row for row in rows if row.method == "CDDFuse"]
    assert [row.source for row in cddfuse] == ["FILM Table 1; TGIF Table 1; MTIF Table A1", "TeSG Table 1"]
    assert cddfuse[1].decimals["EN"] == 3 and cddfuse[0].values["EN"] == 6.70
    assert notes == ["MGFusion Table 2 reports MSRS in the vifb convention; run with --convention vifb to compare with it"]
    vifb, _ = papers.rows_for("msrs", "vifb", ["MGFusion"])
    assert [row.method for row in vifb][-1] == "MGFusion" and vifb[-1].values["Qcv"] == 327.47
    assert papers.rows_for("MSRS", "evaluator", ["TGIF"])[0][-1].method == "TGIF"
