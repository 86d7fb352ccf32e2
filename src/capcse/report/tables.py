"""Tables rendered from the results payload (the dict written as results.json).

Every table exists as plain rows (:func:`sts_table`, :func:`correlation_table`, ...) and is rendered
either as a console box table (:func:`render_box`) or as markdown (:func:`render_markdown`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

STS_COLUMNS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R")
TRANSFER_COLUMNS = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
MULTI_SUBSET = ("STS12", "STS13", "STS14", "STS15", "STS16")
CORRELATION_HEADER = ("cosine P", "cosine S", "euclidean P", "euclidean S", "manhattan P", "manhattan S",
                      "dot P", "dot S")
CORRELATION_KEYS = ("cosine_pearson", "cosine_spearman", "euclidean_pearson", "euclidean_spearman",
                    "manhattan_pearson", "manhattan_spearman", "dot_pearson", "dot_spearman")

Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


def _f(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{float(x):.{digits}f}"


def sts_table(payload: Mapping[str, Any]) -> Table | None:
    """SimCSE's STS table: cosine Spearman x100 per task (STS12-16 as 'all'), plus Avg."""
    res = payload["results"]
    cols = [c for c in STS_COLUMNS if c in res]
    if not cols:
        return None
    vals = [_f(res[c]["cosine_spearman"]) for c in cols]
    avg = payload.get("averages", {}).get("sts")
    split = {res[c].get("split") for c in cols if c in ("STS-B", "SICK-R")}
    title = "STS (cosine Spearman x100; STS12-16 aggregated as 'all')"
    if split == {"dev"}:
        title += " -- dev sets"
    return title, cols + ["Avg."], [vals + [_f(avg)]]


def aggregation_table(payload: Mapping[str, Any]) -> Table | None:
    """STS12-16 under the three aggregations (cosine Spearman x100)."""
    res = payload["results"]
    cols = [c for c in MULTI_SUBSET if c in res]
    if not cols:
        return None
    rows = [[agg] + [_f(res[c][agg]["cosine_spearman"]) for c in cols] for agg in ("all", "wmean", "mean")]
    return "STS12-16 aggregation (cosine Spearman x100)", ["aggregation"] + cols, rows


def correlation_table(payload: Mapping[str, Any]) -> Table | None:
    """The 8-correlation table (Pearson/Spearman x cosine/euclidean/manhattan/dot) of each STS task."""
    res = payload["results"]
    names = [c for c in (*STS_COLUMNS, "KorSTS") if c in res]
    if not names:
        return None
    rows = [[n] + [_f(res[n].get(k)) for k in CORRELATION_KEYS] for n in names]
    return "8-correlation table (x100; P = Pearson, S = Spearman)", ["task", *CORRELATION_HEADER], rows


def subset_table(payload: Mapping[str, Any]) -> Table | None:
    res = payload["results"]
    rows = []
    for task in MULTI_SUBSET:
        if task not in res:
            continue
        for sub, sc in res[task]["subsets"].items():
            rows.append([task, sub, str(sc["n_pairs"]), _f(sc["cosine_pearson"]), _f(sc["cosine_spearman"])])
    if not rows:
        return None
    return "STS12-16 per subset (cosine, x100)", ["task", "subset", "pairs", "Pearson", "Spearman"], rows


def transfer_table(payload: Mapping[str, Any]) -> Table | None:
    """SimCSE's transfer table: accuracy (test mode) or dev accuracy (dev mode), plus Avg."""
    res = payload["results"]
    cols = [c for c in TRANSFER_COLUMNS if c in res]
    if not cols:
        return None
    key = "devacc" if payload.get("mode") == "dev" else "acc"
    vals = [_f(res[c][key]) for c in cols]
    title = f"Transfer ({'dev ' if key == 'devacc' else ''}accuracy x100, logistic-regression probes)"
    header = cols + ["Avg."]
    row = vals + [_f(payload.get("averages", {}).get("transfer"))]
    if "MRPC" in res and res["MRPC"].get("f1") is not None:
        header.append("MRPC F1")
        row.append(_f(res["MRPC"]["f1"]))
    return title, header, [row]


def alignment_table(payload: Mapping[str, Any]) -> Table | None:
    au = payload.get("alignment_uniformity")
    if not au:
        return None
    return (f"Alignment / uniformity (STS-B {au.get('split', '')}, lower is better)",
            ["l_align", "l_uniform", "positive pairs (score > %g)" % au["threshold"], "sentences"],
            [[_f(au["alignment"], 4), _f(au["uniformity"], 4), str(au["n_positive_pairs"]), str(au["n_sentences"])]])


def all_tables(payload: Mapping[str, Any], *, detail: bool = True) -> list[Table]:
    makers = [sts_table, transfer_table, alignment_table]
    if detail:
        makers += [aggregation_table, correlation_table, subset_table]
    return [t for t in (m(payload) for m in makers) if t is not None]


def render_box(table: Table) -> str:
    """A console table in prettytable's style (the one SimCSE's evaluation.py prints)."""
    title, header, rows = table
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    numeric = [_numeric_col(rows, i) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).rjust(w) if num else str(c).ljust(w)
                                 for c, w, num in zip(cells, widths, numeric)) + " |"

    return "\n".join([title, rule, line(header), rule, *(line(r) for r in rows), rule])


def render_markdown(table: Table, level: int = 3) -> str:
    title, header, rows = table
    out = [f"{'#' * level} {title}", "", "| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 and not _numeric_col(rows, 0) else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _numeric_col(rows: list[list[str]], i: int) -> bool:
    try:
        for r in rows:
            if r[i] != "-":
                float(r[i])
        return True
    except ValueError:
        return False


def console_report(payload: Mapping[str, Any], *, detail: bool = False) -> str:
    head = f"------ {payload['model']} ({payload.get('mode', 'test')}, {payload.get('variant', '')} text) ------"
    return "\n\n".join([head, *(render_box(t) for t in all_tables(payload, detail=detail))])


def markdown_report(payload: Mapping[str, Any]) -> str:
    lines = [f"# Evaluation of `{payload['model']}`", "",
             f"mode: {payload.get('mode')}, text: {payload.get('variant')}, "
             f"capcse {payload.get('capcse_version', '')}, {payload.get('created', '')}", ""]
    length = payload.get("settings", {}).get("max_seq_length")
    lines += [f"inference length: sentences truncated at {length} tokens" if length else
              "inference length: not reported by the model", ""]
    timing = payload.get("timing", {})
    if timing.get("total_seconds") is not None:
        lines += [f"wall time: {timing['total_seconds']:.1f} s", ""]
    for t in all_tables(payload, detail=True):
        lines += [render_markdown(t), ""]
    return "\n".join(lines)
