"""The experiment's table: per row, mean ± sample standard deviation over its finished seeds of every task
and of the average; ``measured − published`` per cell when the row carries published numbers.

Each run's metrics file is read by a table extractor (:data:`EXTRACTORS`), which returns
``{sub-row: {column: value}}`` (sub-row ``""`` for a row that is one line of the table; CLIPPINGS' link
evaluation gives one line per embedding: visual, language, multimodal, jaccard):

* ``sts`` — ``capcse eval`` results.json: cosine Spearman x100 of STS12-16 ('all'), STS-B, SICK-R as present
  (dev mode: STS-B and SICK-R dev), and ``Avg.`` = that run's average (the STS table's Avg.);
* ``korsts`` — the 8-correlation KorSTS table (cosine/euclidean/manhattan/dot x Pearson/Spearman, x100) and
  ``Avg.`` = their mean (SimCSE-KO's AVG column);
* ``transfer`` — transfer accuracy (dev accuracy in dev mode) and its average;
* ``linkage`` — ``capcse link eval`` results.json: test ARI, pairwise F1 and purity x100 per embedding.

The average of a row is the mean over seeds of each run's own average (not the average of the task means,
which is the same number, but its std is the spread of the runs' averages).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Callable

from capcse.errors import CapcseError
from capcse.experiment.runner import MARKER, metrics_path
from capcse.experiment.spec import Run, Spec
from capcse.report.tables import CORRELATION_HEADER, CORRELATION_KEYS, STS_COLUMNS, TRANSFER_COLUMNS

AVG = "Avg."


def _sts(payload: dict) -> dict[str, dict[str, float]]:
    res = payload["results"]
    row = {c: float(res[c]["cosine_spearman"]) for c in STS_COLUMNS if c in res}
    if not row:
        raise ValueError("no STS task in it")
    avg = (payload.get("averages") or {}).get("sts")
    row[AVG] = float(avg) if avg is not None else statistics.fmean(row.values())
    return {"": row}


def _korsts(payload: dict) -> dict[str, dict[str, float]]:
    res = payload["results"].get("KorSTS")
    if res is None:
        raise ValueError("no KorSTS result in it")
    row = {head: float(res[key]) for head, key in zip(CORRELATION_HEADER, CORRELATION_KEYS)}
    row[AVG] = statistics.fmean(row.values())
    return {"": row}


def _transfer(payload: dict) -> dict[str, dict[str, float]]:
    res = payload["results"]
    key = "devacc" if payload.get("mode") == "dev" else "acc"
    row = {c: float(res[c][key]) for c in TRANSFER_COLUMNS if c in res}
    if not row:
        raise ValueError("no transfer task in it")
    row[AVG] = statistics.fmean(row.values())
    return {"": row}


_LINK_NAMES = {"image": "visual", "text": "language"}


def _linkage(payload: dict) -> dict[str, dict[str, float]]:
    out = {}
    for r in payload["rows"]:
        name = r["name"].split(":")[0].split(" ")[0]
        out[_LINK_NAMES.get(name, name)] = {"ARI": 100 * float(r["test"]["ari"]), "F1": 100 * float(r["test"]["f1"]),
                                            "purity": 100 * float(r["test"]["purity"])}
    if not out:
        raise ValueError("no rows in it")
    return out


EXTRACTORS: dict[str, Callable[[dict], dict[str, dict[str, float]]]] = {
    "sts": _sts, "korsts": _korsts, "transfer": _transfer, "linkage": _linkage,
}


def read_run(run: Run) -> dict[str, dict[str, float]]:
    path = metrics_path(run)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return EXTRACTORS[run.row.metrics](payload)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CapcseError(f"{path}: cannot read the {run.row.metrics} table of run {run.id}: "
                          f"{type(exc).__name__}: {exc}") from None


def mean_std(values: list[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (n - 1; None for a single value)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def aggregate(spec: Spec, runs: list[Run]) -> dict[str, Any]:
    """The aggregate payload (written as aggregate.json) of the finished runs of ``spec``."""
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    for row in spec.rows:
        mine = [r for r in runs if r.row.name == row.name]
        finished = [r for r in mine if (r.folder / MARKER).is_file()]
        tables = [(r.seed, read_run(r)) for r in finished]
        subs: list[str] = []
        for _seed, table in tables:
            subs += [s for s in table if s not in subs]
        for sub in subs or [""]:
            per_seed = [(seed, t[sub]) for seed, t in tables if sub in t]
            cols: list[str] = []
            for _s, t in per_seed:
                cols += [c for c in t if c not in cols]
            columns += [c for c in cols if c not in columns]
            cond = row.name if not sub else f"{row.name}/{sub}"
            published = row.published if not sub else {k.split("/", 1)[1]: v for k, v in row.published.items()
                                                        if k.startswith(sub + "/")}
            entry: dict[str, Any] = {
                "condition": cond, "row": row.name, "kind": row.kind,
                "n_seeds": len(per_seed), "seeds": [s for s, _t in per_seed if s is not None],
                "planned_runs": len(mine),
                "tasks": {c: mean_std([t[c] for _s, t in per_seed if c in t]) for c in cols},
            }
            if published:
                entry["published"] = dict(published)
                entry["published_source"] = row.published_source
                entry["measured_minus_published"] = {
                    c: entry["tasks"][c]["mean"] - v for c, v in published.items() if c in entry["tasks"]}
            if row.note:
                entry["note"] = row.note
            rows.append(entry)
    if AVG in columns:  # the average last
        columns = [c for c in columns if c != AVG] + [AVG]
    return {"name": spec.name, "spec": str(spec.path), "profile": spec.profile, "description": spec.description,
            "reference": spec.reference, "seeds": spec.seeds, "columns": columns, "rows": rows}


def _cell(stat: dict | None, digits: int) -> str:
    if stat is None:
        return "–"
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown(payload: dict[str, Any], digits: int = 2) -> str:
    """The table (mean ± sample std; n = finished seeds), then measured − published for the rows with
    published numbers."""
    cols = payload["columns"]
    lines = ["| condition | n | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for r in payload["rows"]:
        n = str(r["n_seeds"]) + (f" of {r['planned_runs']}" if r["n_seeds"] < r["planned_runs"] else "")
        lines.append(f"| {r['condition']} | {n} | " + " | ".join(_cell(r["tasks"].get(c), digits) for c in cols) + " |")
    with_pub = [r for r in payload["rows"] if r.get("published")]
    if with_pub:
        lines += ["", "measured − published (published in brackets; – where the paper has no number):", "",
                  "| condition | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for r in with_pub:
            cells = []
            for c in cols:
                d = r["measured_minus_published"].get(c)
                cells.append("–" if d is None else f"{d:+.{digits}f} ({r['published'][c]:.{digits}f})")
            lines.append(f"| {r['condition']} | " + " | ".join(cells) + " |")
        sources = sorted({r["published_source"] for r in with_pub if r.get("published_source")})
        if sources:
            lines += [""] + [f"Published: {s}" for s in sources]
    if payload.get("models_from"):
        lines += ["", f"Train rows: the models trained in {payload['models_from']}, evaluated here (not trained again)."]
    return "\n".join(lines) + "\n"


def plot(payload: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars: one group per column, one bar per condition, error bars = sample std (none for n = 1)."""
    from capcse.report.plots import _pyplot, _save

    rows = [r for r in payload["rows"] if r["n_seeds"]]
    cols = payload["columns"]
    if not rows or not cols:
        return None
    plt = _pyplot()
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(cols) * max(1, len(rows)) * 0.35 + 2), 4.2))
    top = 0.0
    for i, r in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        means = [r["tasks"][c]["mean"] if c in r["tasks"] else math.nan for c in cols]
        errs = [(r["tasks"][c]["std"] or 0.0) if c in r["tasks"] else 0.0 for c in cols]
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=f"{r['condition']} (n={r['n_seeds']})")
        top = max([top] + [m + e for m, e in zip(means, errs) if not math.isnan(m)])
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, fontsize=8)
    ax.set_ylim(min(0.0, *(r["tasks"][c]["mean"] for r in rows for c in r["tasks"])), max(100.0, top * 1.05))
    ax.set_ylabel("mean ± sample std over seeds")
    ax.set_title(payload["name"] + (f" (profile {payload['profile']})" if payload.get("profile") else ""),
                 fontsize=10, loc="right")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return _save(fig, path)


def write_aggregate(payload: dict[str, Any], out: Path, *, plots: bool = True) -> dict[str, Path]:
    from capcse.io import atomic_write_json, atomic_write_text

    written = {"json": atomic_write_json(out / "aggregate.json", payload),
               "md": atomic_write_text(out / "aggregate.md", markdown(payload))}
    if plots:
        png = plot(payload, out / "aggregate.png")
        if png is not None:
            written["png"] = png
    return written
