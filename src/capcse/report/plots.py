"""PNG plots of an evaluation (matplotlib, Agg backend, written atomically).

* ``sts_bars.png``: cosine Spearman per STS task with the average as a line;
* ``transfer_bars.png``: accuracy per transfer task;
* ``<task>_scatter.png`` (STS-B, KorSTS): predicted cosine similarity against the gold score.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from capcse.io import atomic_write_bytes
from capcse.report.tables import STS_COLUMNS, TRANSFER_COLUMNS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def bar_plot(names: list[str], values: list[float], path: Path, *, title: str, ylabel: str,
             avg: float | None = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.6))
    bars = ax.bar(names, values, color="#4c72b0")
    for b, v in zip(bars, values):
        ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    if avg is not None:
        ax.axhline(avg, color="#c44e52", linestyle="--", linewidth=1, label=f"Avg. {avg:.2f}")
        ax.legend(loc="lower right", fontsize=8)
    lo = min(0.0, min(values))
    ax.set_ylim(lo, max(100.0, max(values) * 1.08))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def scatter_plot(pred: np.ndarray, gold: np.ndarray, path: Path, *, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.scatter(gold, pred, s=6, alpha=0.35, color="#4c72b0", edgecolors="none")
    ax.set_xlabel("gold score")
    ax.set_ylabel("cosine similarity")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def write_plots(payload: Mapping[str, Any], out_dir: Path, predictions: Mapping[str, tuple] | None = None) -> dict[str, Path]:
    """Write every plot that the payload supports; ``predictions`` maps a task's display name to
    ``(cosine predictions, gold)`` for the scatter plots. Returns ``{plot name: path}``."""
    out_dir = Path(out_dir)
    res = payload["results"]
    written: dict[str, Path] = {}
    sts = [c for c in STS_COLUMNS if c in res]
    if sts:
        written["sts_bars"] = bar_plot(sts, [res[c]["cosine_spearman"] for c in sts], out_dir / "sts_bars.png",
                                       title=f"STS -- {payload['model']}", ylabel="Spearman x100",
                                       avg=payload.get("averages", {}).get("sts"))
    tr = [c for c in TRANSFER_COLUMNS if c in res]
    if tr:
        key = "devacc" if payload.get("mode") == "dev" else "acc"
        written["transfer_bars"] = bar_plot(tr, [res[c][key] for c in tr], out_dir / "transfer_bars.png",
                                            title=f"Transfer -- {payload['model']}", ylabel="accuracy x100",
                                            avg=payload.get("averages", {}).get("transfer"))
    for name, (pred, gold) in (predictions or {}).items():
        if name not in res:
            continue
        slug = name.lower().replace("-", "")
        sp = res[name]["cosine_spearman"]
        written[f"{slug}_scatter"] = scatter_plot(
            np.asarray(pred), np.asarray(gold), out_dir / f"{slug}_scatter.png",
            title=f"{name} {res[name].get('split', '')}: Spearman {sp:.2f} ({len(gold)} pairs)")
    return written
