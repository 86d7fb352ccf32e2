"""Side-by-side comparison of several evaluation runs (e.g. before and after training): one STS table
with a row per run and the difference to the first run, a grouped bar plot, markdown + HTML."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Mapping

from capcse.errors import CapcseError
from capcse.io import atomic_write_json, atomic_write_text
from capcse.report.tables import STS_COLUMNS, TRANSFER_COLUMNS


def load_payload(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CapcseError(f"no evaluation results at {path}") from None
    except json.JSONDecodeError as exc:
        raise CapcseError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def comparison_rows(payloads: Mapping[str, dict], columns=STS_COLUMNS, key="cosine_spearman", avg="sts"):
    present = [c for c in columns if any(c in p["results"] for p in payloads.values())]
    rows = []
    for label, p in payloads.items():
        vals = [p["results"].get(c, {}).get(key) if key in p["results"].get(c, {}) else
                p["results"].get(c, {}).get("accuracy") for c in present]
        rows.append((label, vals, p.get("averages", {}).get(avg)))
    return present, rows


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _delta(x, base) -> str:
    return "" if x is None or base is None else f" ({x - base:+.2f})"


def compare_markdown(payloads: Mapping[str, dict]) -> str:
    out = []
    for title, cols, key, avg in (("STS (cosine Spearman x100)", STS_COLUMNS, "cosine_spearman", "sts"),
                                  ("Transfer (accuracy)", TRANSFER_COLUMNS, "accuracy", "transfer")):
        present, rows = comparison_rows(payloads, cols, key, avg)
        if not present:
            continue
        base_vals, base_avg = rows[0][1], rows[0][2]
        out += [f"### {title}", "", "| run | " + " | ".join(present) + " | Avg. |",
                "|---|" + "---:|" * (len(present) + 1)]
        for i, (label, vals, a) in enumerate(rows):
            cells = [_fmt(v) + ("" if i == 0 else _delta(v, b)) for v, b in zip(vals, base_vals)]
            out.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(a)}{'' if i == 0 else _delta(a, base_avg)} |")
        out.append("")
    return "\n".join(out)


def compare_plot(payloads: Mapping[str, dict], path: Path) -> Path | None:
    present, rows = comparison_rows(payloads)
    if not present:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(present) + 1)
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for i, (label, vals, avg) in enumerate(rows):
        ys = [v if v is not None else 0.0 for v in vals] + [avg or 0.0]
        ax.bar(x + i * width - 0.4 + width / 2, ys, width, label=label)
    ax.set_xticks(x, present + ["Avg."])
    ax.set_ylabel("cosine Spearman x100")
    lows = [v for _, vals, _ in rows for v in vals if v is not None]
    ax.set_ylim(max(0.0, min(lows) - 10) if lows else 0, 100)
    ax.legend(fontsize=8)
    ax.set_title("STS before/after")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def compare_runs(runs: Mapping[str, str | Path], output_dir: str | Path) -> dict[str, Path]:
    """``runs``: label -> results.json (or its folder). Writes comparison.{json,md,png} and compare.html."""
    if len(runs) < 2:
        raise CapcseError("compare needs at least two runs (label=path)")
    payloads = {label: load_payload(p) for label, p in runs.items()}
    out = Path(output_dir)
    md = compare_markdown(payloads)
    written = {"json": atomic_write_json(out / "comparison.json",
                                         {label: {"model": p["model"], "averages": p.get("averages"),
                                                  "source": str(runs[label])} for label, p in payloads.items()}),
               "markdown": atomic_write_text(out / "comparison.md", md + "\n")}
    png = compare_plot(payloads, out / "comparison.png")
    body = [f"<h1>capcse: {' vs '.join(html.escape(k) for k in payloads)}</h1>"]
    for label, p in payloads.items():
        body.append(f"<p><b>{html.escape(label)}</b>: <code>{html.escape(str(p['model']))}</code> "
                    f"(<a href='{html.escape(str(runs[label]))}'>{html.escape(str(runs[label]))}</a>)</p>")
    if png is not None:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        body.append(f"<img alt='comparison' src='data:image/png;base64,{data}'>")
        written["png"] = png
    body.append("<pre>" + html.escape(md) + "</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>capcse comparison</title></head><body>"
            + "\n".join(body) + "</body></html>\n")
    written["html"] = atomic_write_text(out / "report.html", page)
    return written
