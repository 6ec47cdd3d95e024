"""The single-file HTML report: tables, figures (base64 data URIs) and the run settings, with inline CSS, so the one
file opens in any browser with no server and nothing beside it."""

from __future__ import annotations

import base64
import html

from .tables import Table, html_table

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
thead th { border-bottom: 2px solid #333; border-top: 2px solid #333; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.paper td { color: #555; }
tr.fusekit td:first-child { font-weight: 600; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; font-size: 0.9em; }
dt { font-weight: 600; } dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ccc; }
figcaption, .legend, .note { font-size: 0.85em; color: #555; }
"""


def document(title: str, settings: dict[str, str], tables: list[Table], figures: list[tuple[str, bytes]]) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{esc(title)}</title>",
        f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{esc(title)}</h1>",
    ]
    parts += [html_table(table) for table in tables]
    if figures:
        parts.append("<h2>Figures</h2>")
        for caption, png in figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}"><figcaption>{esc(caption)}</figcaption></figure>')
    parts.append("<h2>Run settings</h2><dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in settings.items()) + "</dl>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
