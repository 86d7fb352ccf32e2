"""The rule-based CLIPPINGS baseline: link captions whose word n-gram sets have Jaccard >= a threshold.

As in the CLIPPINGS baseline script, texts are lower-cased, stripped of punctuation and non-ASCII
characters, split on whitespace into word n-grams; two records are linked when
``|A & B| / |A | B| >= threshold`` (an empty set links nothing) and clusters are the connected
components. ``n`` and the threshold are tuned on the validation split.

Exact and scalable: candidate pairs come from the *prefix filter* (Chaudhuri et al. 2006; Bayardo et
al. 2007): order n-grams from rarest to most common; if ``J(A, B) >= t`` then ``|A & B| >=
ceil(t * max(|A|, |B|))``, so the first ``|A| - ceil(t |A|) + 1`` n-grams of A and the first
``|B| - ceil(t |B|) + 1`` of B must share one. Candidates are found with a sparse product of the
prefix incidence matrices and every candidate's Jaccard is then computed exactly (integer counts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from capcse.evaluation.linkage import canonical_labels

__all__ = ["clean_text", "ngram_sets", "jaccard_pairs", "jaccard_clusters", "tune_jaccard", "JaccardTuneResult"]

_PUNCT = re.compile(r"[\"#$%&\\()*+/:;<=>@\[\]^_`{|}~.?,!'\-]")


def clean_text(text: str) -> str:
    """Lower-case, drop punctuation and non-ASCII characters, collapse whitespace."""
    text = _PUNCT.sub(" ", text.replace("-\n", "").replace("\n", " "))
    return " ".join(text.encode("ascii", "ignore").decode().lower().split())


def ngram_sets(texts: Sequence[str], n: int = 1) -> list[set]:
    """The set of word n-grams of each cleaned text."""
    out = []
    for text in texts:
        words = clean_text(text).split()
        out.append({" ".join(words[k : k + n]) for k in range(len(words) - n + 1)})
    return out


def _incidence(sets: list[set]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Binary record x n-gram matrix with columns ordered from rarest to most common, and set sizes."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for r, s in enumerate(sets):
        for g in s:
            cols.append(vocab.setdefault(g, len(vocab)))
            rows.append(r)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    df = np.bincount(cols, minlength=len(vocab))
    rank = np.empty(len(vocab), dtype=np.int64)
    rank[np.lexsort((np.arange(len(vocab)), df))] = np.arange(len(vocab))
    M = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, rank[cols])), shape=(len(sets), len(vocab)))
    M.sort_indices()
    return M, np.diff(M.indptr)


def jaccard_pairs(sets: list[set], min_threshold: float, *, chunk: int = 4096):
    """Every pair ``i < j`` with Jaccard >= ``min_threshold`` (> 0): arrays (i, j, jaccard)."""
    if not 0.0 < min_threshold <= 1.0:
        raise ValueError(f"the Jaccard threshold must be in (0, 1], got {min_threshold}")
    M, size = _incidence(sets)
    n = M.shape[0]
    # prefix lengths; the small tolerance only lengthens prefixes (more candidates, never fewer)
    need = np.ceil(min_threshold * size - 1e-9).astype(np.int64)
    plen = np.where(size > 0, size - need + 1, 0)
    keep_mask = np.arange(M.nnz) - np.repeat(M.indptr[:-1], size) < np.repeat(plen, size)
    P = sparse.csr_matrix((np.ones(int(keep_mask.sum()), np.int32), M.indices[keep_mask], np.concatenate([[0], np.cumsum(plen)])), shape=M.shape)
    PT = P.T.tocsr()
    out_i, out_j, out_s = [], [], []
    for s in range(0, n, chunk):
        cand = (P[s : s + chunk] @ PT).tocoo()
        i = cand.row.astype(np.int64) + s
        j = cand.col.astype(np.int64)
        sel = i < j
        i, j = i[sel], j[sel]
        if len(i) == 0:
            continue
        inter = np.asarray(M[i].multiply(M[j]).sum(axis=1)).ravel()
        jac = inter / (size[i] + size[j] - inter)
        ok = jac >= min_threshold
        out_i.append(i[ok])
        out_j.append(j[ok])
        out_s.append(jac[ok])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s)


def _labels_from_pairs(n: int, i, j) -> np.ndarray:
    graph = sparse.coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n)).tocsr()
    return canonical_labels(connected_components(graph, directed=False)[1])


def jaccard_clusters(texts: Sequence[str], threshold: float, n: int = 1) -> np.ndarray:
    """Connected components of the graph linking texts whose n-gram Jaccard is >= ``threshold``."""
    i, j, _ = jaccard_pairs(ngram_sets(texts, n), threshold)
    return _labels_from_pairs(len(texts), i, j)


@dataclass
class JaccardTuneResult:
    n: int
    threshold: float
    score: float
    curve: list = field(default_factory=list)  # (n, threshold, score)


def tune_jaccard(
    texts: Sequence[str],
    labels,
    *,
    ns: Sequence[int] = (1, 2, 3),
    thresholds: Sequence[float] = tuple(np.round(np.arange(0.05, 0.951, 0.025), 3)),
) -> JaccardTuneResult:
    """Choose the n-gram size and the threshold maximising ARI on the given (validation) texts."""
    from sklearn.metrics import adjusted_rand_score

    labels = np.asarray(labels)
    thresholds = sorted(float(t) for t in thresholds)
    best = None
    curve = []
    for n in ns:
        i, j, jac = jaccard_pairs(ngram_sets(texts, n), thresholds[0])
        for t in thresholds:
            keep = jac >= t
            s = float(adjusted_rand_score(labels, _labels_from_pairs(len(texts), i[keep], j[keep])))
            curve.append((n, t, s))
            if best is None or s > best.score + 1e-12:
                best = JaccardTuneResult(n=n, threshold=t, score=s)
    best.curve = curve
    return best
