"""``report.html``: one self-contained file, plots and sample grids embedded as ``data:`` URIs.

No script, font, style sheet or image is fetched from anywhere: the page renders the same offline,
from an e-mail attachment or an archive, years later.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deconvgan.sweep.report import ReportParts

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; }
code { background: #f6f6f6; padding: 0.1em 0.3em; }
.grids { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; text-align: center; font-size: 0.85em; }
img.grid { image-rendering: pixelated; width: 256px; }
img.plot { max-width: 100%; }
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...``"""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _inline(text: str) -> str:
    """Escape, then turn markdown's `code` spans into <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def render_html(parts: ReportParts) -> str:
    """The whole page as text."""
    head, *body = parts.table
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(parts.title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{html.escape(parts.title)}</h1>", "<p>" + "<br>".join(_inline(line) for line in parts.lines) + "</p>",
           "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in line) + "</tr>" for line in body]
    out.append("</table>")
    for caption, png in parts.plots.values():
        out += [f"<h2>{html.escape(caption)}</h2>",
                f'<img class="plot" alt="{html.escape(caption)}" src="{data_uri(png)}">']
    if parts.grids:
        out += ["<h2>Final sample grids (first seed of each combination)</h2>", '<div class="grids">']
        for combination, path in parts.grids:
            name = html.escape(combination.replace("__", " "))
            out.append(f'<figure><img class="grid" alt="{name}" src="{data_uri(path.read_bytes())}">'
                       f"<figcaption>{name}</figcaption></figure>")
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
