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


# ------------------------------------------------------------------------------ comparison report
_COMPARE_CSS = _CSS + """
.delta-pos{color:#1a7f37}.delta-neg{color:#cf222e}.delta{font-size:.8em;margin-left:.3em}
td.best{font-weight:bold}caption{caption-side:top;text-align:left;color:#555;font-size:.85em;padding:.2em 0}
figure.wide img{max-width:100%}.note{color:#555;font-size:.85em;max-width:60em}
table.settings td{text-align:left}
"""


def training_run_of(results: Path) -> dict[str, Any] | None:
    """The training run an evaluation belongs to: ``RUN/eval/results.json`` -> ``RUN``'s recipe, summary
    and saved model config (``None`` for a plain ``capcse eval`` folder)."""
    import json

    folder = results if results.is_dir() else results.parent
    for run in (folder, folder.parent):
        if (run / "train_summary.json").is_file() or (run / "recipe.yaml").is_file():
            info: dict[str, Any] = {"dir": run, "summary": {}, "recipe": {}, "model_max_length": None}
            if (run / "train_summary.json").is_file():
                info["summary"] = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
            if (run / "recipe.yaml").is_file():
                import yaml

                info["recipe"] = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8")) or {}
            st_cfg = run / "model" / "sentence_bert_config.json"
            if st_cfg.is_file():
                info["model_max_length"] = json.loads(st_cfg.read_text(encoding="utf-8")).get("max_seq_length")
            return info
    return None


def _rel(target: Path, base: Path) -> str:
    """A link from a page in ``base`` to ``target``, valid wherever the two folders are opened from."""
    import os

    return Path(os.path.relpath(Path(target).resolve(), Path(base).resolve())).as_posix()


def _a(href: str, text: str) -> str:
    return f"<a href='{html.escape(href)}'>{html.escape(text)}</a>"


def _img(path: Path, base: Path, alt: str, wide: bool = True) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    rel = _rel(path, base)
    return (f"<figure class='{'wide' if wide else ''}'><a href='{html.escape(rel)}'><img alt='{html.escape(alt)}' "
            f"src='data:image/png;base64,{data}'></a><figcaption>{html.escape(alt)} ({_a(rel, rel)})</figcaption>"
            "</figure>")


def _html_table(caption: str, header: list[str], rows: list[list[str]], *, raw: bool = False,
                css: str = "") -> str:
    """``raw``: cells are already HTML (escaped by the caller)."""
    cell = (lambda c: str(c)) if raw else (lambda c: html.escape(str(c)))
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if raw and str(c).startswith("<td") else f"<td>{cell(c)}</td>" for c in r)
                   + "</tr>" for r in rows)
    klass = f" class='{css}'" if css else ""
    return (f"<table{klass}><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _score_table(caption: str, columns: list[str], rows: list[tuple[str, list, Any]]) -> str:
    """Runs x tasks, every later run with its difference to the first; the best of each column in bold."""
    cols = columns + ["Avg."]
    values = [list(vals) + [avg] for _, vals, avg in rows]
    best = [max((v[j] for v in values if v[j] is not None), default=None) for j in range(len(cols))]
    out_rows = []
    for i, (label, _, _) in enumerate(rows):
        cells = [f"<td>{html.escape(label)}</td>"]
        for j, v in enumerate(values[i]):
            if v is None:
                cells.append("<td>&ndash;</td>")
                continue
            text = f"{v:.2f}"
            base = values[0][j]
            if i > 0 and base is not None:
                d = v - base
                text += f"<span class='delta {'delta-pos' if d >= 0 else 'delta-neg'}'>{d:+.2f}</span>"
            cls = " class='best'" if len(rows) > 1 and best[j] is not None and v == best[j] else ""
            cells.append(f"<td{cls}>{text}</td>")
        out_rows.append(cells)
    return _html_table(caption, ["run", *cols], out_rows, raw=True)


def _settings_rows(label: str, payload: Mapping[str, Any], train: Mapping[str, Any] | None) -> dict[str, str]:
    settings = payload.get("settings") or {}
    inference_len = (train or {}).get("model_max_length") or settings.get("max_seq_length")
    row = {"model evaluated": str(payload.get("model")),
           "evaluation": f"{payload.get('mode')} mode, {payload.get('variant')} text, tasks "
                         f"{','.join(payload.get('tasks') or []) or '-'}",
           "inference length (tokens)": "-" if inference_len is None else str(inference_len),
           "evaluation seed": str(settings.get("seed", "-"))}
    if train:
        rec, summ = train.get("recipe") or {}, train.get("summary") or {}
        m, d, lo, t = (rec.get(k) or {} for k in ("model", "data", "loss", "train"))
        best = summ.get("best_dev")
        row.update({
            "base model": f"{m.get('name', '-')} (pooler {m.get('pooler', '-')})",
            "training data": str(d.get("train", "-")) + (f" (first {d['limit']})" if d.get("limit") else "")
                             + (f", {summ['train_examples']:,} examples" if summ.get("train_examples") else ""),
            "objective": f"{lo.get('name', '-')} (temperature {lo.get('temperature', '-')})",
            "steps": f"{summ.get('steps', '-')} x batch {t.get('batch_size', '-')}, lr {t.get('learning_rate', '-')}, "
                     f"{t.get('precision', '-')}",
            "training length (tokens)": str(m.get("max_length", "-")),
            "training seed": str(t.get("seed", "-")),
            "training time": f"{summ['train_seconds']:.0f} s" if summ.get("train_seconds") is not None else "-",
            "best dev": f"{best['spearman']:.2f} at step {best['steps']}" if best else "-"})
    return row


def render_compare_html(payloads: Mapping[str, Mapping[str, Any]], sources: Mapping[str, Path], out: Path, *,
                        figures: Mapping[str, Path], trains: Mapping[str, Mapping[str, Any] | None],
                        score_tables: list[tuple[str, list[str], list]], links: Mapping[str, str],
                        mismatches: list[str] = ()) -> str:
    """The comparison page: runs and their settings, score tables with differences, the bar chart, the dev
    curve and the alignment/uniformity picture. Every link is relative to ``out`` (the page's folder).
    ``mismatches``: how the runs were evaluated differently, shown as a NOT COMPARABLE banner."""
    labels = list(payloads)
    title = " vs ".join(labels)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>capcse report: {html.escape(title)}</title>"
             f"<style>{_COMPARE_CSS}</style></head><body>",
             f"<h1>capcse report: {html.escape(title)}</h1>"]
    if mismatches:
        parts.append("<p class='mismatch' style='color:#b00000'><b>NOT COMPARABLE</b> &mdash; "
                     + "; ".join(html.escape(m) for m in mismatches) + "</p>")
    created = sorted({str(p.get("created", "")) for p in payloads.values()})
    when = f"evaluated {created[0]}" if len(created) == 1 else f"evaluations from {created[0]} to {created[-1]}"
    parts.append(f"<p class='meta'>capcse {html.escape(str(next(iter(payloads.values())).get('capcse_version', '')))}"
                 f" &middot; {html.escape(when)} &middot; "
                 + " &middot; ".join(_a(href, text) for text, href in links.items()) + "</p>")

    parts.append("<h2>Runs</h2>")
    rows = {label: _settings_rows(label, payloads[label], trains.get(label)) for label in labels}
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    file_row = []
    for label in labels:
        src = sources[label]
        links_here = [_a(_rel(src, out), "results.json")]
        page = src.parent / "report.html"
        if page.is_file():
            links_here.append(_a(_rel(page, out), "report.html"))
        if trains.get(label):
            links_here.append(_a(_rel(Path(trains[label]["dir"]), out), "training run"))
        file_row.append("<td>" + " &middot; ".join(links_here) + "</td>")
    body = [[f"<td>{html.escape(k)}</td>"] + [f"<td>{html.escape(rows[label].get(k, '-'))}</td>" for label in labels]
            for k in keys]
    body.append(["<td>files</td>", *file_row])
    parts.append(_html_table("settings of each run", ["", *labels], body, raw=True, css="settings"))

    for caption, columns, table_rows in score_tables:
        parts.append(f"<h2>{html.escape(caption.split(' (')[0])}</h2>")
        parts.append(_score_table(caption, columns, table_rows))
    if "bars" in figures:
        parts.append(_img(figures["bars"], out, "STS per task, axis from 0"))

    if "dev_curve" in figures:
        parts.append("<h2>Training: dev curve</h2>")
        notes = []
        for label in labels:
            train = trains.get(label) or {}
            summary = train.get("summary") or {}
            best = summary.get("best_dev")
            if best:
                # what the run recorded (train_summary.json), else what its recipe asked for (older runs)
                loaded = summary.get("best_loaded")
                if loaded is None:
                    loaded = ((train.get("recipe") or {}).get("eval") or {}).get("load_best", True)
                notes.append(f"{label}: best dev {best['spearman']:.2f} at step {best['steps']}; the saved weights "
                             + (f"are those of step {best['steps']} (eval.load_best)." if loaded else
                                "are those of the last step (eval.load_best is off)."))
        parts.append("<p class='note'>STS-B dev Spearman during training; the circle marks the best step. "
                     + html.escape(" ".join(notes)) + "</p>")
        parts.append(_img(figures["dev_curve"], out, "dev curve"))

    au = {label: p["alignment_uniformity"] for label, p in payloads.items() if p.get("alignment_uniformity")}
    if au:
        parts.append("<h2>Alignment and uniformity</h2>")
        parts.append("<p class='note'>Wang &amp; Isola (2020), as in SimCSE: l_align is the mean squared distance "
                     "of normalised embeddings of positive STS-B pairs, l_uniform the log of the mean Gaussian "
                     "potential over all pairs; lower is better for both.</p>")
        parts.append(_html_table("alignment / uniformity", ["run", "l_align", "l_uniform", "positive pairs",
                                                             "sentences", "split"],
                                 [[label, f"{a['alignment']:.4f}", f"{a['uniformity']:.4f}",
                                   a.get("n_positive_pairs", "-"), a.get("n_sentences", "-"), a.get("split", "-")]
                                  for label, a in au.items()]))
        if "alignment_uniformity" in figures:
            parts.append(_img(figures["alignment_uniformity"], out, "alignment / uniformity", wide=False))
    parts.append("</body></html>\n")
    return "\n".join(parts)
