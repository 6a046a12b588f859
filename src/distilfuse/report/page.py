"""HTML of the report page: one self-contained file (inline CSS, no script, nothing fetched from a network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1320px; padding: 0 24px 48px; color: #1d2329; background: #fff; }
h1 { font-size: 26px; margin: 28px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d6dde4; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.lead, p.note, figcaption { color: #4c5966; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e3e8ed; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f1f4f7; position: sticky; top: 0; }
td.best { font-weight: 700; background: #fdeceb; }
.scroll { overflow-x: auto; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 10px; }
figure { margin: 8px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e8ed; }
.warn { color: #9a4b00; }
table.facts th { text-align: left; }
table.facts td { text-align: left; white-space: normal; overflow-wrap: anywhere; }
"""


@dataclass(frozen=True)
class Section:
    anchor: str
    heading: str
    body: str


def figure(src: str, alt: str, caption: str = "") -> str:
    """An image file of the report (relative `src`) with its caption."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{escape(src)}" alt="{escape(alt)}">{cap}</figure>'


def paragraph(text: str, css_class: str = "note") -> str:
    return f'<p class="{css_class}">{escape(text)}</p>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], bold: Sequence[Sequence[bool]] | None = None) -> str:
    """A table of plain-text cells; bold[r][c] marks a cell as best."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    lines = []
    for r, row in enumerate(rows):
        cells = "".join(
            f'<td class="best">{escape(c)}</td>' if bold is not None and bold[r][i] else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def key_values(items: Mapping[str, str]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in items.items())
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def render(title: str, lead: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{escape(s.anchor)}">{escape(s.heading)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{escape(s.anchor)}"><h2>{escape(s.heading)}</h2>\n{s.body}\n</section>' for s in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request
        f"<title>{escape(title)}</title>\n<style>{CSS}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{paragraph(lead, 'lead')}\n<nav>{nav}</nav>\n{body}\n</body></html>\n"
    )
