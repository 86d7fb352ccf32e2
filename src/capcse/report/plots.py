"""PNG plots of an evaluation (matplotlib, Agg backend, written atomically).

* ``sts_bars.png``: cosine Spearman per STS task with the average as a line;
* ``transfer_bars.png``: accuracy per transfer task;
* ``<task>_scatter.png`` (STS-B, KorSTS): predicted cosine similarity against the gold score;
* for comparisons (``capcse report compare``): grouped bars of several runs
  (:func:`grouped_bar_plot`), the dev curve of a training run (:func:`dev_curve_plot`) and the
  alignment/uniformity picture of Wang & Isola (2020) as SimCSE draws it (:func:`alignment_uniformity_plot`).

Every bar axis starts at 0 (a cut axis exaggerates differences) and every bar carries its value;
legends sit outside the axes, so they cannot cover a bar.
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
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False)
    lo = min(0.0, min(values))
    ax.set_ylim(lo, max(100.0, max(values) * 1.08))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10, loc="right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def grouped_bar_plot(columns: list[str], series: Mapping[str, list[float | None]], path: Path, *,
                     title: str, ylabel: str) -> Path:
    """One group of bars per column, one bar per series (run); y from 0 to 100, every bar labelled.

    A missing value (``None``) gets no bar and the label "n/a" instead of a misleading 0."""
    plt = _pyplot()
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(columns))
    fig, ax = plt.subplots(figsize=(max(6.0, len(columns) * (0.55 + 0.45 * n) + 1.5), 3.9))
    colors = ["#9aa5b1", "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    for i, (label, values) in enumerate(series.items()):
        xs = x - 0.4 + width * (i + 0.5)
        ys = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, ys, width * 0.95, label=label, color=colors[i % len(colors)])
        for b, v in zip(bars, values):
            ax.annotate("n/a" if v is None else f"{v:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points",
                        rotation=90 if n > 2 else 0)
    ax.set_xticks(x, columns)
    vals = [v for values in series.values() for v in values if v is not None]
    ax.set_ylim(min(0.0, *vals) if vals else 0.0, max(100.0, *(v * 1.1 for v in vals)) if vals else 100.0)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=min(n, 4), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10, loc="right")
    return _save(fig, path)


def dev_curve_plot(curves: Mapping[str, tuple[list[int], list[float]]], path: Path, *,
                   best: Mapping[str, tuple[int, float]] | None = None, losses: Mapping[str, tuple] | None = None,
                   ylabel: str = "STS-B dev Spearman x100") -> Path:
    """Dev score against training step, one line per run, the best step marked; the training loss on a
    second axis when given."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o", markersize=3, linewidth=1.4, label=f"{label}: dev")
        for s_, v in zip(steps, values):
            ax.annotate(f"{v:.1f}", (s_, v), fontsize=7, xytext=(0, 4), textcoords="offset points", ha="center")
        if best and label in best:
            bs, bv = best[label]
            ax.scatter([bs], [bv], s=70, facecolors="none", edgecolors="#c44e52", zorder=3,
                       label=f"{label}: best {bv:.2f} at step {bs}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel + " (zoomed)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if losses:
        ax2 = ax.twinx()
        for label, (steps, values) in losses.items():
            (line,) = ax2.plot(steps, values, color="#999999", linewidth=1, linestyle=":")
            handles.append(line)
            labels.append(f"{label}: training loss")
        ax2.set_ylabel("training loss", color="#777777")
    ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False, ncol=2)
    return _save(fig, path)


def alignment_uniformity_plot(points: Mapping[str, tuple[float, float]], path: Path) -> Path:
    """l_align (x) against l_uniform (y), one labelled point per run; lower left is better."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    for i, (label, (a, u)) in enumerate(points.items()):
        ax.scatter([a], [u], s=60, color=f"C{i}", zorder=3)
        ax.annotate(f"{label}\n({a:.3f}, {u:.3f})", (a, u), fontsize=8, xytext=(6, 4), textcoords="offset points")
    xs = [a for a, _ in points.values()]
    ys = [u for _, u in points.values()]
    padx = max(0.05, 0.25 * (max(xs) - min(xs)))
    pady = max(0.1, 0.25 * (max(ys) - min(ys)))
    ax.set_xlim(min(xs) - padx, max(xs) + 2.5 * padx)
    ax.set_ylim(min(ys) - pady, max(ys) + pady)
    ax.set_xlabel("l_align (lower is better)")
    ax.set_ylabel("l_uniform (lower is better)")
    ax.grid(alpha=0.3)
    ax.set_title("alignment / uniformity (STS-B)", fontsize=10)
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
