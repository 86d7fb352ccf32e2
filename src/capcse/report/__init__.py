"""capcse.report: results of an evaluation as console tables, JSON, markdown, PNG plots and HTML.

``write_report(result, output_dir)`` writes, atomically::

    output_dir/results.json      the payload: {"model", "results": {"STS12": {"cosine_spearman": ..}, ..}, "avg", ..}
    output_dir/results.md        every table in markdown
    output_dir/plots/*.png       per-task bars, predicted-vs-gold scatter for STS-B (and KorSTS)
    output_dir/report.html       self-contained page (plots embedded) linking all of the above
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from capcse.io import atomic_write_json, atomic_write_text
from capcse.report.html import render_html
from capcse.report.plots import write_plots
from capcse.report.tables import all_tables, console_report, markdown_report, render_box, render_markdown

SCATTER_TASKS = ("stsb", "korsts")


def scatter_data(result: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``display name -> (cosine predictions, gold)`` for the tasks that get a scatter plot."""
    sts = getattr(result, "sts", None)
    out = {}
    if sts is None:
        return out
    for task, r in sts.tasks.items():
        if task in SCATTER_TASKS:
            out[r.name] = (np.concatenate(list(r.predictions.values())), np.concatenate(list(r.gold.values())))
    return out


def _json_safe(obj: Any) -> Any:
    """NaN/inf (a constant predictor has no correlation) become null: results.json stays valid JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_report(result: Any, output_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write results.json, results.md, plots/*.png and report.html for ``result`` (an
    ``EvaluationResult`` or an already-built payload dict). Returns ``{artefact: path}``."""
    out = Path(output_dir)
    payload: Mapping[str, Any] = result if isinstance(result, Mapping) else result.to_dict()
    written: dict[str, Path] = {}
    written["json"] = atomic_write_json(out / "results.json", _json_safe(payload))
    written["markdown"] = atomic_write_text(out / "results.md", markdown_report(payload) + "\n")
    pngs = write_plots(payload, out / "plots", scatter_data(result)) if plots else {}
    written.update({f"plot:{k}": v for k, v in pngs.items()})
    page = render_html(payload, pngs, base_dir=out, links={"results.json": "results.json", "results.md": "results.md"})
    written["html"] = atomic_write_text(out / "report.html", page)
    return written


__all__ = ["all_tables", "console_report", "markdown_report", "render_box", "render_html", "render_markdown",
           "scatter_data", "write_plots", "write_report"]
