"""A small self-contained HTML report: tables, and the PNG plots embedded (data URIs) and linked."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Mapping

from capcse.report.tables import Table, all_tables

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.meta{color:#666;font-size:.9em}figure{display:inline-block;margin:.5em 1em .5em 0}
figure img{max-width:520px;border:1px solid #ddd}figcaption{font-size:.8em;color:#666}
"""


def _table_html(table: Table) -> str:
    title, header, rows = table
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(payload: Mapping[str, Any], plots: Mapping[str, Path] | None = None, *,
                base_dir: Path | None = None, links: Mapping[str, str] | None = None) -> str:
    """The report as one HTML string. PNGs are embedded as base64 (the page stands alone) and also
    linked by a path relative to ``base_dir``; ``links`` adds links such as results.json."""
    model = html.escape(str(payload["model"]))
    timing = payload.get("timing", {})
    meta = [f"mode: {html.escape(str(payload.get('mode')))}", f"text: {html.escape(str(payload.get('variant')))}",
            f"capcse {html.escape(str(payload.get('capcse_version', '')))}",
            html.escape(str(payload.get("created", "")))]
    if timing.get("total_seconds") is not None:
        meta.append(f"wall time {timing['total_seconds']:.1f} s")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>capcse eval: {model}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Evaluation of <code>{model}</code></h1>", f"<p class='meta'>{' &middot; '.join(meta)}</p>"]
    if links:
        parts.append("<p>" + " &middot; ".join(f"<a href='{html.escape(href)}'>{html.escape(text)}</a>"
                                               for text, href in links.items()) + "</p>")
    if payload.get("averages"):
        avg = ", ".join(f"{k}: {v:.2f}" for k, v in payload["averages"].items())
        parts.append(f"<p><b>Average</b> -- {html.escape(avg)}</p>")
    if plots:
        parts.append("<h2>Plots</h2>")
        for name, path in plots.items():
            path = Path(path)
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            rel = path.relative_to(base_dir).as_posix() if base_dir is not None else path.name
            parts.append(f"<figure><a href='{html.escape(rel)}'><img alt='{html.escape(name)}' "
                         f"src='data:image/png;base64,{data}'></a><figcaption>{html.escape(rel)}</figcaption></figure>")
    parts += [_table_html(t) for t in all_tables(payload, detail=True)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
