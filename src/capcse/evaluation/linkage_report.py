"""Evaluate a linkage benchmark end to end: embedding rows (visual / language / multimodal) and the
Jaccard baseline, each tuned on the validation split and scored once on the test split."""

from __future__ import annotations

from typing import Callable

import numpy as np

from capcse.evaluation.linkage_jaccard import jaccard_clusters, tune_jaccard
from capcse.evaluation.linkage_metrics import LinkageSplit, evaluate_split, linkage_scores

__all__ = ["evaluate_embeddings", "evaluate_jaccard", "evaluate_records"]

MODES = {"image": 1.0, "text": 0.0}


def _split(z: dict, name: str) -> LinkageSplit:
    sel = z["split"] == name
    if not sel.any():
        raise ValueError(f"no {name} records in the embeddings file")
    return LinkageSplit(labels=z["cluster_id"][sel], image=z["image"][sel], text=z["text"][sel], name=name)


def evaluate_embeddings(z: dict, *, mode: str = "all", im_wt: float = 0.5, tune_im_wt: bool = False) -> list[dict]:
    """Rows for the visual (im_wt 1), language (im_wt 0) and multimodal record embeddings."""
    val, test = _split(z, "validation"), _split(z, "test")
    rows = []
    modes = ("image", "text", "multimodal") if mode == "all" else (mode,)
    for m in modes:
        if m == "multimodal":
            res = evaluate_split(val, test, im_wt=im_wt, tune_im_wt=tune_im_wt)
        else:
            res = evaluate_split(val, test, im_wt=MODES[m])
        rows.append({"name": {"image": "visual", "text": "language", "multimodal": "multimodal"}[m], **res})
    return rows


def evaluate_jaccard(texts, labels, splits) -> dict:
    """The Jaccard baseline: n-gram size and threshold tuned on validation, scored on test."""
    texts, labels, splits = list(texts), np.asarray(labels), np.asarray(splits)
    val = splits == "validation"
    test = splits == "test"
    tuned = tune_jaccard([t for t, v in zip(texts, val) if v], labels[val])
    pred = jaccard_clusters([t for t, s in zip(texts, test) if s], tuned.threshold, n=tuned.n)
    return {"name": "jaccard", "threshold": tuned.threshold, "ngram": tuned.n, "validation_ari": tuned.score,
            "test": linkage_scores(labels[test], pred)}


def evaluate_records(embeddings_path, records_path, *, mode: str = "all", im_wt: float = 0.5, tune_im_wt: bool = False,
                     jaccard: bool = True, jaccard_only: bool = False, log: Callable = print) -> dict:
    """`capcse link eval`: every requested row, as a JSON-ready dict."""
    from capcse.data.linkage import read_records

    records, report = read_records(records_path)
    log(report.summary())
    rows = []
    if not jaccard_only:
        if embeddings_path is None:
            raise ValueError("give an embeddings file (or --jaccard-only)")
        with np.load(embeddings_path) as f:
            z = {k: f[k] for k in f.files}
        keep = {r.record_id for r in records}
        sel = np.array([rid in keep for rid in z["record_id"]])
        z = {k: v[sel] for k, v in z.items()}
        rows.extend(evaluate_embeddings(z, mode=mode, im_wt=im_wt, tune_im_wt=tune_im_wt))
    if jaccard or jaccard_only:
        rows.append(evaluate_jaccard([r.text for r in records], [r.cluster_id for r in records], [r.split for r in records]))
    counts = {s: sum(r.split == s for r in records) for s in ("train", "validation", "test")}
    return {"records": str(records_path), "embeddings": str(embeddings_path), "records_per_split": counts, "rows": rows}

