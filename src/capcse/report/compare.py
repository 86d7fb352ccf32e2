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


#: Where an evaluation report may record the inference length (tokens per sentence at encoding time).
LENGTH_KEYS = ("inference_max_length", "max_seq_length", "max_length")


def inference_length(payload: dict) -> int | None:
    """The inference length a report records (top level or ``settings``), or None when it does not say."""
    for where in (payload, payload.get("settings") or {}):
        for key in LENGTH_KEYS:
            if where.get(key) is not None:
                return int(where[key])
    return None


def task_set(payload: dict) -> tuple[str, ...]:
    return tuple(sorted(payload.get("results", {})))


def mismatches(payloads: Mapping[str, dict]) -> tuple[list[str], list[str]]:
    """(mismatches, notes) of runs compared side by side. A mismatch makes the comparison meaningless: a
    different evaluation mode (test vs dev split), task set (so the averages are over different tasks),
    text variant, or known inference length. A note: an inference length that a report does not record."""
    problems, notes = [], []

    def differ(what: str, values: dict) -> None:
        if len(set(values.values())) > 1:
            problems.append(f"{what} differ: " + "; ".join(f"{k} {v}" for k, v in values.items()))

    differ("modes", {k: p.get("mode", "unknown") for k, p in payloads.items()})
    differ("task sets", {k: f"{len(task_set(p))} task(s) ({', '.join(task_set(p))})" for k, p in payloads.items()})
    differ("text variants", {k: p.get("variant", "unknown") for k, p in payloads.items()})
    lengths = {k: inference_length(p) for k, p in payloads.items()}
    differ("inference lengths", {k: f"{v} tokens" for k, v in lengths.items() if v is not None})
    unknown = [k for k, v in lengths.items() if v is None]
    if unknown:
        notes.append(f"inference length not recorded for {', '.join(unknown)}")
    return problems, notes


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
    problems, notes = mismatches(payloads)
    out = []
    if problems:
        out += ["**NOT COMPARABLE** -- these runs were evaluated differently:", ""]
        out += [f"- {p}" for p in problems] + [""]
    if notes:
        out += [f"Note: {n}." for n in notes] + [""]
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


def compare_runs(runs: Mapping[str, str | Path], output_dir: str | Path, *,
                 allow_mismatch: bool = False) -> dict[str, Path]:
    """``runs``: label -> results.json (or its folder). Writes comparison.{json,md,png} and report.html.

    Runs evaluated differently (:func:`mismatches`: mode, task set, text variant, inference length) are
    refused with a CapcseError naming the differences, or with ``allow_mismatch`` compared under a
    "NOT COMPARABLE" banner (markdown, HTML) and a ``mismatches`` list in comparison.json."""
    if len(runs) < 2:
        raise CapcseError("compare needs at least two runs (label=path)")
    payloads = {label: load_payload(p) for label, p in runs.items()}
    problems, notes = mismatches(payloads)
    if problems and not allow_mismatch:
        raise CapcseError("the runs were evaluated differently: " + "; ".join(problems)
                          + " (compare anyway with --allow-mismatch)")
    out = Path(output_dir)
    md = compare_markdown(payloads)
    written = {"json": atomic_write_json(out / "comparison.json",
                                         {"runs": {label: {"model": p["model"], "averages": p.get("averages"),
                                                           "mode": p.get("mode"), "tasks": list(task_set(p)),
                                                           "inference_length": inference_length(p),
                                                           "source": str(runs[label])}
                                                   for label, p in payloads.items()},
                                          "mismatches": problems, "notes": notes}),
               "markdown": atomic_write_text(out / "comparison.md", md + "\n")}
    png = compare_plot(payloads, out / "comparison.png")
    body = [f"<h1>capcse: {' vs '.join(html.escape(k) for k in payloads)}</h1>"]
    if problems:
        body.append("<p class='mismatch' style='color:#b00000'><b>NOT COMPARABLE</b> &mdash; "
                    + "; ".join(html.escape(p) for p in problems) + "</p>")
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
