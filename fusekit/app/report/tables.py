"""The comparison table a paper prints, built once and written as Markdown, LaTeX, CSV and HTML.

Rows: each method fusekit measured (mean over its pairs, as `fusekit metrics` averages: undefined values left
out), then each paper row of the same test set and convention. Per metric column the best value is bold and the
second best underlined, over all rows shown, in the metric's own direction (↑ higher is better, ↓ lower).
A second table gives, for each fusekit method whose name matches a paper row's method (``film`` and FILM, or
``--fused CDDFuse=DIR`` and CDDFuse), the difference fusekit − paper per metric: how far a run is from
reproducing the paper.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass, field

from ...metrics.registry import METRICS

SECONDS, PARAMETERS = "s/pair", "params"


@dataclass
class Row:
    method: str
    source: str  # "fusekit (N pairs)" or "FILM Table 1; TGIF Table 1"
    values: dict[str, float | None]
    kind: str  # "fusekit" or "paper"
    citation: str = ""
    pairs: int | None = None
    seconds: float | None = None
    parameters: int | None = None
    decimals: dict[str, int] = field(default_factory=dict)  # paper rows: as the paper printed them (default 4)

    def text(self, metric: str) -> str:
        value = self.values.get(metric)
        if metric in self.decimals and _defined(value):
            return f"{value:.{self.decimals[metric]}f}"
        return fmt(value)


@dataclass
class Table:
    title: str
    metrics: list[str]
    rows: list[Row]
    differences: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def rank(self, metric: str) -> dict[int, int]:
        """Row index → 1 (best) or 2 (second best) for `metric`; ties share the rank."""
        higher = METRICS.get(metric).higher_is_better
        values = sorted({_rounded(r.values.get(metric)) for r in self.rows if _defined(r.values.get(metric))}, reverse=higher)
        ranks = {}
        for index, row in enumerate(self.rows):
            value = _rounded(row.values.get(metric))
            if _defined(row.values.get(metric)) and value in values[:2]:
                ranks[index] = values.index(value) + 1
        return ranks


def _defined(value) -> bool:
    return value is not None and math.isfinite(value)


def _rounded(value):
    """Ranks compare what the table prints (4 significant decimals), so equal-looking numbers tie."""
    return None if not _defined(value) else round(value, 4)


def fmt(value, decimals: int = 4) -> str:
    if not _defined(value):
        return "—"
    return f"{value:.{decimals}f}" if abs(value) < 1000 else f"{value:.1f}"


def fmt_signed(value) -> str:
    return "—" if not _defined(value) else f"{value:+.4f}"


def fmt_seconds(value) -> str:
    return "—" if not _defined(value) else f"{value:.3f}"


def fmt_parameters(value) -> str:
    if value is None:
        return "—"
    return f"{value / 1e6:.2f}M" if value >= 10_000 else str(value)


def arrow(metric: str) -> str:
    return "↑" if METRICS.get(metric).higher_is_better else "↓"


def build(title: str, metrics: list[str], measured: list[Row], paper_rows: list, notes: list[str]) -> Table:
    rows = list(measured)
    for paper in paper_rows:
        rows.append(Row(paper.method, paper.source, {m: paper.values.get(m) for m in metrics}, "paper", paper.citation, decimals=paper.decimals))
    differences = []
    for ours in measured:
        for paper in paper_rows:
            if paper.method.lower() != ours.method.lower():
                continue
            delta = {m: (ours.values[m] - paper.values[m]) if _defined(ours.values.get(m)) and _defined(paper.values.get(m)) else None for m in metrics}
            differences.append(Row(ours.method, f"fusekit − {paper.source}", delta, "difference", paper.citation))
    return Table(title, metrics, rows, differences, notes)


# -------------------------------------------------------------------------------------------------- Markdown


def markdown(table: Table) -> str:
    header = ["method", "source", *(f"{m} {arrow(m)}" for m in table.metrics), SECONDS, PARAMETERS]
    lines = [f"## {table.title}", "", _md_row(header), _md_row(["---", "---", *["---:"] * (len(header) - 2)])]
    ranks = {m: table.rank(m) for m in table.metrics}
    for index, row in enumerate(table.rows):
        cells = [_md_escape(row.method), _md_escape(row.source)]
        for metric in table.metrics:
            text = row.text(metric)
            rank = ranks[metric].get(index)
            cells.append(f"**{text}**" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text)
        cells += [fmt_seconds(row.seconds), fmt_parameters(row.parameters)]
        lines.append(_md_row(cells))
    lines += ["", "Best **bold**, second <u>underlined</u>; ↑ higher is better, ↓ lower is better. "
              "fusekit rows are means over the pairs measured; paper rows are the papers' own numbers on their test sets."]
    if table.differences:
        lines += ["", "### Difference to the papers (fusekit − paper)", "",
                  _md_row(["method", "compared with", *table.metrics]), _md_row(["---", "---", *["---:"] * len(table.metrics)])]
        lines += [_md_row([_md_escape(r.method), _md_escape(r.source), *(fmt_signed(r.values.get(m)) for m in table.metrics)]) for r in table.differences]
    citations = _citations(table)
    if citations:
        lines += ["", "Sources:", "", *(f"- {_md_escape(c)}" for c in citations)]
    if table.notes:
        lines += ["", *(f"> {_md_escape(n)}" for n in table.notes)]
    return "\n".join(lines) + "\n"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _citations(table: Table) -> list[str]:
    return list(dict.fromkeys(c for row in table.rows if row.kind == "paper" for c in row.citation.split("; ") if c))


# ----------------------------------------------------------------------------------------------------- LaTeX

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "−": "--", "α": r"$\alpha$", "β": r"$\beta$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(char, char) for char in text)


def latex(table: Table, label: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); one row per method, fusekit's rows first."""
    columns = "ll" + "r" * (len(table.metrics) + 2)
    head = ["Method", "Source", *(f"{tex_escape(m)} $\\{'uparrow' if arrow(m) == '↑' else 'downarrow'}$" for m in table.metrics), "s/pair", "Params"]
    ranks = {m: table.rank(m) for m in table.metrics}
    lines = [
        "% fusekit report; needs \\usepackage{booktabs}",
        "\\begin{table}[t]", "\\centering", f"\\caption{{{tex_escape(table.title)}. Best \\textbf{{bold}}, second \\underline{{underlined}}.}}",
        f"\\label{{{label}}}", f"\\begin{{tabular}}{{{columns}}}", "\\toprule", " & ".join(head) + " \\\\", "\\midrule",
    ]
    previous_kind = None
    for index, row in enumerate(table.rows):
        if previous_kind is not None and row.kind != previous_kind:
            lines.append("\\midrule")
        previous_kind = row.kind
        cells = [tex_escape(row.method), tex_escape(row.source)]
        for metric in table.metrics:
            text = row.text(metric).replace("—", "--")
            rank = ranks[metric].get(index)
            cells.append(f"\\textbf{{{text}}}" if rank == 1 else f"\\underline{{{text}}}" if rank == 2 else text)
        cells += [fmt_seconds(row.seconds).replace("—", "--"), tex_escape(fmt_parameters(row.parameters).replace("—", "--"))]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    if table.differences:
        lines += [
            "", "\\begin{table}[t]", "\\centering", f"\\caption{{{tex_escape(table.title)}: difference to the papers (fusekit -- paper).}}",
            f"\\label{{{label}-difference}}", f"\\begin{{tabular}}{{ll{'r' * len(table.metrics)}}}", "\\toprule",
            " & ".join(["Method", "Compared with", *(tex_escape(m) for m in table.metrics)]) + " \\\\", "\\midrule",
            *(" & ".join([tex_escape(r.method), tex_escape(r.source), *(fmt_signed(r.values.get(m)).replace("—", "--") for m in table.metrics)]) + " \\\\"
              for r in table.differences),
            "\\bottomrule", "\\end{tabular}", "\\end{table}",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------- CSV


def csv_text(table: Table) -> str:
    """One line per row, full precision: kind (fusekit, paper, difference), method, source, pairs, the metrics,
    seconds per pair, parameters and the citation."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "method", "source", "pairs", *table.metrics, "seconds_per_pair", "parameters", "citation"])
    for row in [*table.rows, *table.differences]:
        values = ["" if not _defined(row.values.get(m)) else repr(row.values[m]) for m in table.metrics]
        writer.writerow([row.kind, row.method, row.source, "" if row.pairs is None else row.pairs, *values,
                         "" if row.seconds is None else repr(row.seconds), "" if row.parameters is None else row.parameters, row.citation])
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------------ HTML


def html_table(table: Table) -> str:
    esc = html.escape
    ranks = {m: table.rank(m) for m in table.metrics}
    head = "".join(f"<th>{esc(h)}</th>" for h in ["method", "source", *(f"{m} {arrow(m)}" for m in table.metrics), SECONDS, PARAMETERS])
    body = []
    for index, row in enumerate(table.rows):
        cells = [f"<td>{esc(row.method)}</td>", f"<td>{esc(row.source)}</td>"]
        for metric in table.metrics:
            text = esc(row.text(metric))
            rank = ranks[metric].get(index)
            cells.append(f'<td class="num">{"<strong>" + text + "</strong>" if rank == 1 else "<u>" + text + "</u>" if rank == 2 else text}</td>')
        cells += [f'<td class="num">{fmt_seconds(row.seconds)}</td>', f'<td class="num">{fmt_parameters(row.parameters)}</td>']
        body.append(f'<tr class="{row.kind}">' + "".join(cells) + "</tr>")
    parts = [f"<h2>{esc(table.title)}</h2>", f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>",
             "<p class=\"legend\">Best <strong>bold</strong>, second <u>underlined</u>; ↑ higher is better, ↓ lower is better.</p>"]
    if table.differences:
        dhead = "".join(f"<th>{esc(h)}</th>" for h in ["method", "compared with", *table.metrics])
        drows = "".join("<tr>" + f"<td>{esc(r.method)}</td><td>{esc(r.source)}</td>" + "".join(f'<td class="num">{fmt_signed(r.values.get(m))}</td>' for m in table.metrics) + "</tr>" for r in table.differences)
        parts.append(f"<h3>Difference to the papers (fusekit − paper)</h3><table><thead><tr>{dhead}</tr></thead><tbody>{drows}</tbody></table>")
    citations = _citations(table)
    if citations:
        parts.append("<h3>Sources</h3><ul>" + "".join(f"<li>{esc(c)}</li>" for c in citations) + "</ul>")
    parts += [f'<p class="note">{esc(n)}</p>' for n in table.notes]
    return "\n".join(parts)
