"""Evaluate a linkage benchmark end to end: embedding rows (visual / language / multimodal) and the
Jaccard baseline, each tuned on the validation split and scored once on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from capcse.errors import CapcseError, DataFormatError, DataNotFoundError
from capcse.evaluation.linkage_jaccard import jaccard_clusters, tune_jaccard
from capcse.evaluation.linkage_metrics import LinkageSplit, evaluate_split, linkage_scores

__all__ = ["evaluate_embeddings", "evaluate_jaccard", "evaluate_records", "load_embeddings"]

MODES = {"image": 1.0, "text": 0.0}


def _split(z: dict, name: str) -> LinkageSplit:
    sel = z["split"] == name
    if not sel.any():
        raise CapcseError(f"no {name} records in the embeddings file (tuning needs validation, scoring needs test)")
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


def evaluate_jaccard(texts, labels, splits, *, variant: str = "original", scans=None) -> dict:
    """The Jaccard baseline: n-gram size and threshold tuned on validation, scored on test."""
    texts, labels, splits = list(texts), np.asarray(labels), np.asarray(splits)
    scans = None if scans is None else np.asarray(scans)
    val = splits == "validation"
    test = splits == "test"
    tuned = tune_jaccard([t for t, v in zip(texts, val) if v], labels[val], variant=variant,
                         scans=None if scans is None else scans[val])
    pred = jaccard_clusters([t for t, s in zip(texts, test) if s], tuned.threshold, n=tuned.n, variant=variant,
                            scans=None if scans is None else scans[test])
    return {"name": "jaccard", "variant": variant, "threshold": tuned.threshold, "ngram": tuned.n,
            "validation_ari": tuned.score, "test": linkage_scores(labels[test], pred)}


def _ids_preview(ids, k: int = 10) -> str:
    ids = sorted(map(str, ids))
    return ", ".join(ids[:k]) + (", ..." if len(ids) > k else "")


def evaluate_records(embeddings_path, records_path, *, mode: str = "all", im_wt: float = 0.5, tune_im_wt: bool = False,
                     jaccard: bool = True, jaccard_only: bool = False, jaccard_variant: str = "original",
                     jaccard_same_scan: bool = False, log: Callable = print) -> dict:
    """`capcse link eval`: every requested row, as a JSON-ready dict.

    Every row is scored on the same records: those of the records file that passed its checks *and*
    have an embedding. Records without an embedding and embeddings without a (valid) record are
    dropped from every row, with a warning naming them, and listed under ``dropped`` in the result.
    """
    from capcse.data.linkage import read_records

    records, report = read_records(records_path)
    log(report.summary())
    rows = []
    dropped = {"invalid_records": report.problems(), "records_without_embedding": [], "embeddings_without_record": []}
    z = None
    if not jaccard_only:
        if embeddings_path is None:
            raise CapcseError("give an embeddings file (or --jaccard-only)")
        z = load_embeddings(embeddings_path)
        have = set(map(str, z["record_id"]))
        keep = {r.record_id for r in records}
        dropped["records_without_embedding"] = sorted(keep - have)
        dropped["embeddings_without_record"] = sorted(have - keep)
        if dropped["records_without_embedding"]:
            n = len(dropped["records_without_embedding"])
            log(f"WARNING: {n} of {len(records)} valid records of {records_path} have no embedding in {embeddings_path} "
                f"({_ids_preview(dropped['records_without_embedding'])}); every row, the Jaccard baseline included, "
                f"is scored without them")
            records = [r for r in records if r.record_id in have]
        if dropped["embeddings_without_record"]:
            n = len(dropped["embeddings_without_record"])
            log(f"WARNING: {n} embeddings of {embeddings_path} have no valid record in {records_path} "
                f"({_ids_preview(dropped['embeddings_without_record'])}); they are not scored")
        keep = {r.record_id for r in records}
        sel = np.array([str(rid) in keep for rid in z["record_id"]])
        z = {k: v[sel] for k, v in z.items()}
        rows.extend(evaluate_embeddings(z, mode=mode, im_wt=im_wt, tune_im_wt=tune_im_wt))
    if jaccard or jaccard_only:
        from capcse.evaluation.linkage_jaccard import original_scan_key

        scans = [original_scan_key(r.record_id) for r in records] if jaccard_same_scan else None
        rows.append(evaluate_jaccard([r.text for r in records], [r.cluster_id for r in records], [r.split for r in records],
                                     variant=jaccard_variant, scans=scans))
    counts = {s: sum(r.split == s for r in records) for s in ("train", "validation", "test")}
    return {"records": str(records_path), "embeddings": str(embeddings_path), "records_per_split": counts,
            "dropped": dropped, "rows": rows}


EMBEDDING_KEYS = ("record_id", "cluster_id", "split", "image", "text")


def load_embeddings(path) -> dict:
    """An embeddings .npz of `capcse link embed` / `link train`, checked: a clear error, not numpy's."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"embeddings file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single array, not an .npz archive")
            z = {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(path, None, f"not an embeddings .npz written by `capcse link embed` ({exc})") from None
    missing = [k for k in EMBEDDING_KEYS if k not in z]
    if missing:
        raise DataFormatError(path, None, f"missing array(s) {', '.join(missing)} (has {', '.join(z) or 'none'}); "
                              "expected the output of `capcse link embed`")
    n = {k: len(z[k]) for k in EMBEDDING_KEYS}
    if len(set(n.values())) != 1:
        raise DataFormatError(path, None, f"arrays of different lengths: {n}")
    return z
