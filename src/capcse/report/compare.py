"""Side-by-side comparison of several evaluation runs (e.g. before and after training): one STS table
with a row per run and the difference to the first run, a grouped bar plot, markdown + HTML."""

from __future__ import annotations

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


def inference_length(payload: dict) -> int | None:
    """The inference length an evaluation report records (``settings.max_seq_length``, written by
    :func:`capcse.evaluation.suite.evaluate`), or None when it does not say (reports before session 6)."""
    value = (payload.get("settings") or {}).get("max_seq_length")
    return None if value is None else int(value)


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
    """Grouped bars of the STS scores, one bar per run, axis from 0, every bar labelled."""
    from capcse.report.plots import grouped_bar_plot

    present, rows = comparison_rows(payloads)
    if not present:
        return None
    return grouped_bar_plot(present + ["Avg."], {label: list(vals) + [avg] for label, vals, avg in rows}, path,
                            title="STS (cosine Spearman x100)", ylabel="cosine Spearman x100")


def _results_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "results.json" if path.is_dir() else path


def _compare_figures(payloads: Mapping[str, dict], trains: Mapping[str, dict | None], out: Path) -> dict[str, Path]:
    """The dev curve of the training runs (``trains``: label -> :func:`~capcse.report.html.training_run_of`)
    and the alignment/uniformity picture."""
    from capcse.report.plots import alignment_uniformity_plot, dev_curve_plot

    figures: dict[str, Path] = {}
    curves, best, losses = {}, {}, {}
    for label in payloads:
        summ = (trains[label] or {}).get("summary") or {}
        if summ.get("dev_history"):
            curves[label] = ([h["steps"] for h in summ["dev_history"]], [h["spearman"] for h in summ["dev_history"]])
            if summ.get("best_dev"):
                best[label] = (summ["best_dev"]["steps"], summ["best_dev"]["spearman"])
            if summ.get("losses"):
                losses[label] = ([x["step"] for x in summ["losses"]], [x["loss"] for x in summ["losses"]])
    if curves:
        figures["dev_curve"] = dev_curve_plot(curves, out / "dev_curve.png", best=best, losses=losses)
    au = {label: (p["alignment_uniformity"]["alignment"], p["alignment_uniformity"]["uniformity"])
          for label, p in payloads.items() if p.get("alignment_uniformity")}
    if au:
        figures["alignment_uniformity"] = alignment_uniformity_plot(au, out / "alignment_uniformity.png")
    return figures


def _compare_page(payloads: Mapping[str, dict], sources: Mapping[str, Path], trains: Mapping[str, dict | None],
                  out: Path, written: Mapping[str, Path], mismatches: list[str] = ()) -> str:
    from capcse.report.html import render_compare_html

    tables = []
    for caption, cols, key, avg in (("STS (cosine Spearman x100)", STS_COLUMNS, "cosine_spearman", "sts"),
                                    ("Transfer (accuracy x100)", TRANSFER_COLUMNS, "acc", "transfer")):
        if key == "acc" and next(iter(payloads.values())).get("mode") == "dev":
            key, caption = "devacc", "Transfer (dev accuracy x100)"
        present, rows = comparison_rows(payloads, cols, key, avg)
        if present:
            tables.append((caption + "; differences to the first run", present, rows))
    figures = {k: v for k, v in (("bars", written.get("png")), ("dev_curve", written.get("dev_curve")),
                                 ("alignment_uniformity", written.get("alignment_uniformity"))) if v is not None}
    return render_compare_html(payloads, sources, out, figures=figures,
                               trains=trains,
                               score_tables=tables,
                               links={"comparison.md": "comparison.md", "comparison.json": "comparison.json"},
                               mismatches=mismatches)


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
    if png is not None:
        written["png"] = png
    from capcse.report.html import training_run_of

    sources = {label: _results_path(runs[label]) for label in payloads}
    trains = {label: training_run_of(sources[label]) for label in payloads}  # read once, for figures and page
    written.update(_compare_figures(payloads, trains, out))
    page = _compare_page(payloads, sources, trains, out, written, problems)
    written["html"] = atomic_write_text(out / "report.html", page)
    return written
