"""Scores of a record-linkage partition and threshold selection on the validation split only.

Metrics (all from the contingency table, never from an N x N matrix):

* ARI, the adjusted Rand index (scikit-learn's ``adjusted_rand_score``), the CLIPPINGS headline number;
* pairwise precision / recall / F1 over record pairs put in the same cluster;
* purity: the share of records that belong to the majority true cluster of their predicted cluster.

Threshold (and image-weight) selection: :func:`tune_threshold` sees only the embeddings and labels it
is given; :func:`evaluate_split` takes a validation split and a test split, tunes on the former and
scores the latter once. The test labels are read after tuning, only to score (the original CLIPPINGS
training script tuned its threshold on a set that contained the records it then scored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy import sparse

from capcse.evaluation.linkage import SingleLinkageTree, canonical_labels, single_linkage

__all__ = [
    "pair_counts",
    "pairwise_prf",
    "purity",
    "linkage_scores",
    "combine_embeddings",
    "TuneResult",
    "ari_from_pair_counts",
    "sweep_merges",
    "tune_threshold",
    "tune_threshold_and_weight",
    "LinkageSplit",
    "evaluate_split",
]


def _contingency(true, pred) -> sparse.csr_matrix:
    true = canonical_labels(true)
    pred = canonical_labels(pred)
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} true labels but {len(pred)} predicted labels")
    return sparse.coo_matrix(
        (np.ones(len(true), dtype=np.int64), (pred, true)), shape=(pred.max() + 1 if len(pred) else 0, true.max() + 1 if len(true) else 0)
    ).tocsr()


def _pairs(counts) -> int:
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pair_counts(true, pred) -> tuple[int, int, int]:
    """(same-cluster pairs in both, predicted same-cluster pairs, true same-cluster pairs)."""
    table = _contingency(true, pred)
    both = _pairs(table.data)
    return both, _pairs(np.asarray(table.sum(axis=1)).ravel()), _pairs(np.asarray(table.sum(axis=0)).ravel())


def _prf_from_pair_counts(both: int, pred_pairs: int, true_pairs: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from the pair counts of :func:`pair_counts` (conventions: :func:`pairwise_prf`)."""
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def pairwise_prf(true, pred) -> dict:
    """Pairwise precision, recall and F1 (a pair is positive when both records share a cluster).

    With no predicted pairs precision is 1.0 by convention (nothing claimed, nothing wrong); with no
    true pairs recall is 1.0; F1 is their harmonic mean (0 when both are 0).
    """
    tp, pred_pairs, true_pairs = pair_counts(true, pred)
    precision, recall, f1 = _prf_from_pair_counts(tp, pred_pairs, true_pairs)
    return {"precision": precision, "recall": recall, "f1": f1, "tp_pairs": tp, "pred_pairs": pred_pairs, "true_pairs": true_pairs}


def purity(true, pred) -> float:
    """Share of records in the majority true cluster of their predicted cluster."""
    table = _contingency(true, pred)
    if table.shape[0] == 0:
        return 1.0
    return float(table.max(axis=1).toarray().sum() / table.sum())


def linkage_scores(true, pred) -> dict:
    """ARI, pairwise precision/recall/F1, purity and cluster counts of a predicted partition."""
    from sklearn.metrics import adjusted_rand_score

    out = {"ari": float(adjusted_rand_score(np.asarray(true), np.asarray(pred)))}
    out.update(pairwise_prf(true, pred))
    out["purity"] = purity(true, pred)
    out["n_records"] = int(len(true))
    out["n_clusters_pred"] = int(len(np.unique(pred)))
    out["n_clusters_true"] = int(len(np.unique(true)))
    return out


def combine_embeddings(image, text, im_wt: float) -> np.ndarray:
    """CLIPPINGS record embedding: L2-normalised ``im_wt * img/|img| + (1 - im_wt) * txt/|txt|``.

    ``im_wt = 1`` is the image-only (visual) embedding, ``0`` the text-only (language) one. When the
    two parts have different widths (towers without a shared space, e.g. untrained towers used as
    they are), the record embedding is the concatenation ``sqrt(w) img/|img| (+) sqrt(1-w) txt/|txt|``,
    whose cosine similarity is exactly ``w cos_img + (1 - w) cos_txt``.
    """
    if not 0.0 <= im_wt <= 1.0:
        raise ValueError(f"im_wt must be in [0, 1], got {im_wt}")
    parts = []
    for arr in (image, text):
        arr = np.asarray(arr, dtype=np.float64)
        parts.append(arr / np.linalg.norm(arr, axis=1, keepdims=True))
    if im_wt == 1.0:
        return parts[0]
    if im_wt == 0.0:
        return parts[1]
    if parts[0].shape[1] != parts[1].shape[1]:
        return np.hstack([np.sqrt(im_wt) * parts[0], np.sqrt(1.0 - im_wt) * parts[1]])
    mixed = im_wt * parts[0] + (1.0 - im_wt) * parts[1]
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


@dataclass
class TuneResult:
    threshold: float
    score: float
    metric: str
    im_wt: float | None = None
    curve: list = field(default_factory=list)  # (im_wt, threshold, score) for every candidate tried


def ari_from_pair_counts(n: int, both: int, pred_pairs: int, true_pairs: int) -> float:
    """ARI from the pair counts of :func:`pair_counts`, with scikit-learn's formula and integers.

    ``adjusted_rand_score`` builds the pair confusion matrix (ordered pairs) ``tp = 2 both``,
    ``fp = 2 (pred - both)``, ``fn = 2 (true - both)``, ``tn = n^2 - n - tp - fp - fn`` and returns 1
    when ``fp = fn = 0``, else ``2 (tp tn - fn fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn))``, in
    Python integers; this is the same computation, so the value is bit-identical.
    """
    n, both, pred_pairs, true_pairs = int(n), int(both), int(pred_pairs), int(true_pairs)
    tp, fp, fn = 2 * both, 2 * (pred_pairs - both), 2 * (true_pairs - both)
    tn = n * n - n - tp - fp - fn
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def sweep_merges(a, b, heights, labels, metric: str = "ari") -> tuple[np.ndarray, np.ndarray, float]:
    """The score of single linkage at every distinct merge height, union by union.

    ``(a, b, heights)`` is the tree's union sequence (:meth:`SingleLinkageTree.merges`), sorted by
    height. Each union of clusters A and B adds ``|A| |B|`` predicted pairs and ``sum_c A_c B_c`` pairs
    that share a true cluster ``c`` (each cluster keeps its true-label counts; the smaller table is
    merged into the larger, so the whole sweep costs O(N log N)). The score is taken once all unions
    of one height are done, i.e. at threshold ``h`` with links ``<= h``. Returns (distinct heights,
    score at each, score of the all-singletons partition).
    """
    if metric not in ("ari", "f1"):
        raise ValueError(f"unknown tuning metric {metric!r} (ari, f1)")
    true = canonical_labels(labels)
    n = len(true)
    score = ((lambda bo, pp, tp: ari_from_pair_counts(n, bo, pp, tp)) if metric == "ari"
             else (lambda bo, pp, tp: _prf_from_pair_counts(bo, pp, tp)[2]))
    true_pairs = _pairs(np.bincount(true)) if n else 0
    parent = list(range(n))
    tables = [{int(c): 1} for c in true]
    sizes = [1] * n

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    both = pred_pairs = 0
    before = score(0, 0, true_pairs)
    heights = np.asarray(heights, dtype=np.float64)
    distinct, scores = [], []
    a, b = np.asarray(a).tolist(), np.asarray(b).tolist()
    k = 0
    while k < len(heights):
        h = heights[k]
        while k < len(heights) and heights[k] == h:
            x, y = find(a[k]), find(b[k])
            k += 1
            if x == y:
                continue
            if len(tables[x]) < len(tables[y]):
                x, y = y, x
            pred_pairs += sizes[x] * sizes[y]
            big = tables[x]
            for c, cnt in tables[y].items():
                have = big.get(c, 0)
                both += have * cnt
                big[c] = have + cnt
            tables[y] = None
            parent[y] = x
            sizes[x] += sizes[y]
        distinct.append(float(h))
        scores.append(score(both, pred_pairs, true_pairs))
    return np.asarray(distinct), np.asarray(scores), before


def _operating_point(h: np.ndarray, k: int, upper: float | None) -> float:
    """A threshold strictly inside [h[k], h[k+1]) (the partition is constant there); k = -1: below h[0].

    The middle of the interval, so that a slightly different test distribution is not cut at an edge;
    past the last height, 5 % (at least 1e-3) beyond it, capped at ``upper`` when that is known.
    """
    if k < 0:
        return float(h[0] / 2)
    if k + 1 < len(h):
        mid = (h[k] + h[k + 1]) / 2
        return float(mid if h[k] <= mid < h[k + 1] else h[k])
    beyond = h[k] + max(1e-3, 0.05 * h[k])
    return float(min(beyond, upper) if upper is not None else beyond)


def _score(metric: str, true, pred) -> float:
    if metric == "ari":
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(true, pred))
    if metric == "f1":
        return pairwise_prf(true, pred)["f1"]
    raise ValueError(f"unknown tuning metric {metric!r} (ari, f1)")


def tune_threshold(
    embeddings,
    labels,
    *,
    metric: str = "ari",
    thresholds: Sequence[float] | None = None,
    t_max: float = 1.0,
) -> TuneResult:
    """The single-linkage threshold that maximises ``metric`` on the given (validation) records.

    By default the exact optimum over all thresholds in ``[0, t_max]``: the partition only changes at
    the merge heights of the single-linkage tree, and :func:`sweep_merges` scores the partition at
    every distinct height (and the all-singletons one below the lowest), union by union, at any size.
    The returned threshold is the middle of the winning interval ``[h_k, h_{k+1})``, which yields the
    very partition that was scored, so ``score`` is the metric at the returned threshold. Ties go to
    the lowest threshold. With ``thresholds``, only those values are scored.
    """
    labels = np.asarray(labels)
    tree = SingleLinkageTree(embeddings, t_max=t_max)
    curve = []
    best = None
    if thresholds is None:
        a, b, heights = tree.merges()
        h_all, s_all, before = sweep_merges(a, b, heights, labels, metric)
        inside = h_all <= t_max
        upper = t_max if tree.Z is None else None  # a forest built for t_max knows nothing above it
        # all singletons is a candidate unless records coincide (a merge at height 0 happens at any t >= 0)
        candidates = [(-1, before)] if not len(h_all) or h_all[0] > 0 else []
        candidates += [(k, s_all[k]) for k in np.flatnonzero(inside)]
        for k, s in candidates:
            t_op = 0.0 if not len(h_all) else _operating_point(h_all, int(k), upper)
            curve.append((None, t_op, float(s)))
            if best is None or s > best[1] + 1e-12:
                best = (t_op, float(s))
    else:
        for t in sorted(float(t) for t in thresholds):
            s = _score(metric, labels, tree.labels_at(t))
            curve.append((None, t, s))
            if best is None or s > best[1] + 1e-12:
                best = (t, s)
    return TuneResult(threshold=best[0], score=best[1], metric=metric, curve=curve)


def tune_threshold_and_weight(
    image,
    text,
    labels,
    *,
    weights: Sequence[float] = tuple(np.round(np.linspace(0.0, 1.0, 11), 2)),
    metric: str = "ari",
    t_max: float = 1.0,
) -> TuneResult:
    """Jointly choose ``im_wt`` (from ``weights``) and the threshold on the given (validation) records."""
    best = None
    curve = []
    for w in weights:
        res = tune_threshold(combine_embeddings(image, text, float(w)), labels, metric=metric, t_max=t_max)
        curve.extend((float(w), t, s) for _, t, s in res.curve)
        if best is None or res.score > best.score + 1e-12:
            best = TuneResult(threshold=res.threshold, score=res.score, metric=metric, im_wt=float(w))
    best.curve = curve
    return best


@dataclass
class LinkageSplit:
    """The records of one split: either one embedding matrix, or image and text parts to mix."""

    labels: np.ndarray
    embeddings: np.ndarray | None = None
    image: np.ndarray | None = None
    text: np.ndarray | None = None
    name: str = ""

    def embed(self, im_wt: float | None) -> np.ndarray:
        if self.embeddings is not None:
            return self.embeddings
        if self.image is None or self.text is None or im_wt is None:
            raise ValueError(f"split {self.name!r}: give embeddings, or image and text parts and an im_wt")
        return combine_embeddings(self.image, self.text, im_wt)


def evaluate_split(
    validation: LinkageSplit,
    test: LinkageSplit,
    *,
    im_wt: float | None = 0.5,
    tune_im_wt: bool = False,
    metric: str = "ari",
    cluster: Callable | None = None,
) -> dict:
    """Tune on ``validation`` only, then cluster ``test`` once and score it.

    The tuning functions receive the validation records and labels only; ``test.labels`` is read after
    the operating point is fixed, to compute the scores.
    """
    if tune_im_wt:
        if validation.image is None or validation.text is None:
            raise ValueError("tune_im_wt needs image and text embeddings of the validation split")
        tuned = tune_threshold_and_weight(validation.image, validation.text, validation.labels, metric=metric)
    else:
        tuned = tune_threshold(validation.embed(im_wt), validation.labels, metric=metric)
        tuned.im_wt = im_wt if validation.embeddings is None else None
    cluster = cluster or (lambda X, t: single_linkage(X, t))
    pred = cluster(test.embed(tuned.im_wt), tuned.threshold)
    scores = linkage_scores(test.labels, pred)
    return {
        "threshold": tuned.threshold,
        "im_wt": tuned.im_wt,
        f"validation_{metric}": tuned.score,
        "test": scores,
    }
