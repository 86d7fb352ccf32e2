"""The SimCSE delta against masked-LM quality (issue 14): one point per pretraining snapshot.

Joins two records that exist anyway: the aggregate of an experiment whose rows are named ``<kind>-<step>``
(``raw-500``, ``unsup-500``, ``sup-500``, ...; ``experiments/simcse-vs-mlm.yaml``) and the held-out
masked-token accuracy a ``capcse pretrain`` run measured at those steps (its ``pretrain_summary.json``, or,
while it still runs, the ``trainer_state.json`` of its newest checkpoint). Writes a table (markdown + JSON)
and a plot: STS average of the raw encoder and of SimCSE from it against held-out MLM accuracy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from capcse.errors import CapcseError
from capcse.io import atomic_write_json, atomic_write_text

ROW = re.compile(r"^(?P<kind>[a-z]+)-(?P<step>\d+)$")


def pretrain_curve(run: str | Path) -> dict[int, dict[str, float]]:
    """step -> {mlm_accuracy, mlm_loss, perplexity} of a ``capcse pretrain`` output folder."""
    run = Path(run)
    summary = run / "pretrain_summary.json"
    if summary.is_file():
        points = json.loads(summary.read_text(encoding="utf-8")).get("curve", [])
    else:
        from capcse.train.pretrain import heldout_curve
        from capcse.train.trainer import complete_checkpoints

        newest = complete_checkpoints(run)
        if not newest:
            raise CapcseError(f"{run}: neither pretrain_summary.json nor a checkpoint-*/trainer_state.json "
                              "(not a capcse pretrain output folder)")
        state = json.loads((newest[0] / "trainer_state.json").read_text(encoding="utf-8"))
        points = heldout_curve(state.get("log_history", []))
    return {int(p["step"]): {k: float(p[k]) for k in ("mlm_accuracy", "mlm_loss", "perplexity")} for p in points}


def mlm_curve(aggregate: dict[str, Any], curve: dict[int, dict[str, float]], column: str = "Avg.") -> list[dict]:
    """One entry per pretraining step with a row in ``aggregate``: the step's MLM figures and, per kind (raw,
    unsup, sup, ...), the mean and sample std of ``column`` and the difference to the raw encoder."""
    by_step: dict[int, dict[str, Any]] = {}
    for row in aggregate.get("rows", []):
        m = ROW.match(str(row.get("row", row.get("condition", ""))))
        cell = row.get("tasks", {}).get(column)
        if not m or not cell or cell.get("mean") is None:
            continue
        step = int(m["step"])
        entry = by_step.setdefault(step, {"step": step, **curve.get(step, {}), "rows": {}})
        entry["rows"][m["kind"]] = {"mean": cell["mean"], "std": cell.get("std"), "n": row.get("n_seeds")}
    for entry in by_step.values():
        raw = entry["rows"].get("raw")
        for kind, cell in entry["rows"].items():
            cell["delta"] = None if raw is None or kind == "raw" else cell["mean"] - raw["mean"]
    return [by_step[s] for s in sorted(by_step)]


def curve_markdown(points: list[dict], column: str = "Avg.") -> str:
    kinds = [k for k in ("raw", "unsup", "sup") if any(k in p["rows"] for p in points)]
    kinds += sorted({k for p in points for k in p["rows"]} - set(kinds))
    head = ["pretraining step", "held-out MLM accuracy"] + [f"{k} {column}" for k in kinds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for p in points:
        cells = [f"{p['step']:,}", "-" if "mlm_accuracy" not in p else f"{p['mlm_accuracy']:.4f}"]
        for k in kinds:
            c = p["rows"].get(k)
            if c is None:
                cells.append("-")
                continue
            text = f"{c['mean']:.2f}" + (f" ± {c['std']:.2f}" if c.get("std") is not None else "")
            if c.get("delta") is not None:
                text += f" ({c['delta']:+.2f})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curve(points: list[dict], path: Path, column: str = "Avg.") -> Path | None:
    pts = [p for p in points if "mlm_accuracy" in p]
    if not pts:
        return None
    from capcse.report.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    kinds = sorted({k for p in pts for k in p["rows"]}, key=lambda k: ("raw", "unsup", "sup").index(k)
                   if k in ("raw", "unsup", "sup") else 9)
    for kind in kinds:
        xs = [p["mlm_accuracy"] for p in pts if kind in p["rows"]]
        ys = [p["rows"][kind]["mean"] for p in pts if kind in p["rows"]]
        es = [p["rows"][kind]["std"] or 0.0 for p in pts if kind in p["rows"]]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=kind)
    for p in pts:
        ax.annotate(f"{p['step']}", (p["mlm_accuracy"], min(c["mean"] for c in p["rows"].values())),
                    textcoords="offset points", xytext=(0, -12), ha="center", fontsize=7, color="grey")
    ax.set_xlabel("held-out masked-token accuracy of the pretraining snapshot")
    ax.set_ylabel(f"STS {column} (x100, mean ± sample std)")
    ax.set_title("SimCSE from pretraining snapshots (step numbers in grey)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def write_mlm_curve(experiment: str | Path, pretrain_run: str | Path, out: str | Path,
                    column: str = "Avg.") -> dict[str, Path]:
    experiment, out = Path(experiment), Path(out)
    agg_path = experiment / "aggregate.json" if experiment.is_dir() else experiment
    try:
        aggregate = json.loads(agg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CapcseError(f"no experiment aggregate at {agg_path} (run capcse experiment first)") from None
    except json.JSONDecodeError as exc:
        raise CapcseError(f"{agg_path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    points = mlm_curve(aggregate, pretrain_curve(pretrain_run), column)
    if not points:
        raise CapcseError(f"{agg_path}: no finished row named <kind>-<step> with a {column!r} column")
    payload = {"experiment": str(agg_path), "pretrain_run": str(pretrain_run), "column": column, "points": points}
    written = {"json": atomic_write_json(out / "mlm_curve.json", payload),
               "md": atomic_write_text(out / "mlm_curve.md", curve_markdown(points, column))}
    png = plot_curve(points, out / "mlm_curve.png", column)
    if png:
        written["png"] = png
    return written
