"""A self-contained HTML report: sections of tables and PNGs (embedded as base64), one file.

The page needs nothing beside it to open in a browser; the PNGs are also left in the run folder.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{border-bottom:2px solid #345}h2{margin-top:2em;color:#345}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}th{background:#eef}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{max-width:560px;border:1px solid #ddd}
figcaption{font-size:13px;color:#555;max-width:560px}.note{color:#555;font-size:14px}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
"""


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "–"
        if v == float("inf"):
            return "∞"
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return html.escape(str(v))


@dataclass
class Section:
    title: str
    parts: list = field(default_factory=list)

    def text(self, text: str) -> "Section":
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')
        return self

    def table(self, rows: list, *, caption: str = "") -> "Section":
        """``rows``: list of dicts with the same keys (the columns)."""
        if not rows:
            return self
        cols = list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f'<table class="metrics">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
        return self

    def image(self, path, caption: str = "") -> "Section":
        data = base64.b64encode(Path(path).read_bytes()).decode()
        alt = html.escape(caption or Path(path).stem)
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" data-file="{html.escape(Path(path).name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        return self

    def code(self, text: str) -> "Section":
        self.parts.append(f"<pre>{html.escape(text)}</pre>")
        return self


class Report:
    """Collect sections, then :meth:`write` one HTML file atomically."""

    def __init__(self, title: str):
        self.title = title
        self.sections: list[Section] = []

    def section(self, title: str) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s

    def to_html(self) -> str:
        toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(self.sections))
        body = "".join(f'<h2 id="s{i}">{html.escape(s.title)}</h2>' + "\n".join(s.parts) for i, s in enumerate(self.sections))
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1><ul>{toc}</ul>{body}</body></html>"
        )

    def write(self, path) -> Path:
        write_text(path, self.to_html())
        return Path(path)
