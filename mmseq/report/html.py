"""HTML building blocks of the run report: one self-contained page, images inline as base64 PNG.

Every text that reaches the page goes through :func:`html.escape`; nothing is loaded from the
network, so the file opens offline.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #1d1d1f; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f5f5f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
.hit { color: #0a7d27; font-weight: bold; }
.cols { display: flex; gap: 2em; flex-wrap: wrap; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline (data URI)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return esc(value)


def table(
    rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None, *, raw: bool = False
) -> str:
    """A table; cells are escaped (``raw=True`` trusts them: only for HTML built here)."""

    def cell(v: Any, tag: str) -> str:
        num = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
        return f"<{tag}{num}>{v if raw and isinstance(v, str) else fmt(v)}</{tag}>"

    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def key_values(mapping: Mapping[str, Any]) -> str:
    """A two-column table of a flat mapping."""
    return table([(k, v) for k, v in mapping.items()], ("field", "value"))


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are shown as text."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def section(title: str, body: str, *, anchor: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: ``sections`` are ``(anchor, title, body html)``."""
    toc = " · ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "\n".join(section(t, b, anchor=a) for a, t, b in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n"
        f'<h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p><p>{toc}</p>\n{body}\n'
        "</body></html>\n"
    )


__all__ = ["esc", "flatten", "image", "key_values", "page", "section", "table"]
