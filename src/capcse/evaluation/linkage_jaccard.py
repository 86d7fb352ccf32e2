"""The rule-based CLIPPINGS baseline: link captions whose word n-gram sets have Jaccard >= a threshold.

Two variants (``variant=``), both lower-casing, dropping non-ASCII characters and splitting on
whitespace into word n-grams; two records are linked when ``|A & B| / |A | B| >= threshold`` (an
empty set links nothing) and clusters are the connected components; ``n`` and the threshold are tuned
on the validation split (first maximum of ARI, in grid order, as the original loop):

``"original"`` (the default of ``capcse link eval``) -- CLIPPINGS' ``scripts/jaccard_sim.py``:
    punctuation is *deleted* and hyphens kept (``"U.S."`` -> ``us``, ``"well-known"`` one token,
    ``"it's"`` -> ``its``); grid n in 1..5, threshold 0.05..0.20 by 0.01. The script also drops pairs
    of records "from the same scan" (record ids equal after their first ``_``): pass ``scans`` (one key
    per record, e.g. :func:`original_scan_key` of the ids) to do the same; off by default, since
    capcse's record ids are not scan names.
``"capcse"`` -- punctuation (hyphens and apostrophes included) *replaced by spaces*; grid n in 1..3,
    threshold 0.05..0.95 by 0.025 (a wider range, for captions that share more words than OCR'd articles).

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

__all__ = ["clean_text", "ngram_sets", "jaccard_pairs", "jaccard_clusters", "tune_jaccard", "JaccardTuneResult",
           "JACCARD_VARIANTS", "original_scan_key"]

_PUNCT = re.compile(r"[\"#$%&\\()*+/:;<=>@\[\]^_`{|}~.?,!'\-]")
# jaccard_sim.py's remove_odd_characters: chars_to_remove = r'"#$%&\()*+/:;<=>@[\\]^_`{|}~.?,!\'' (no hyphen)
_ORIGINAL_DELETE = str.maketrans("", "", "\"#$%&\\()*+/:;<=>@[]^_`{|}~.?,!'")

JACCARD_VARIANTS = {
    "original": {"ns": (1, 2, 3, 4, 5), "thresholds": tuple(round(0.05 + 0.01 * k, 2) for k in range(16))},
    "capcse": {"ns": (1, 2, 3), "thresholds": tuple(float(t) for t in np.round(np.arange(0.05, 0.951, 0.025), 3))},
}


def _variant(variant: str) -> dict:
    if variant not in JACCARD_VARIANTS:
        raise ValueError(f"unknown Jaccard variant {variant!r} ({', '.join(JACCARD_VARIANTS)})")
    return JACCARD_VARIANTS[variant]


def clean_text(text: str, variant: str = "capcse") -> str:
    """Lower-case, remove punctuation and non-ASCII characters, collapse whitespace.

    ``capcse`` replaces punctuation (hyphens included) by spaces; ``original`` deletes it and keeps
    hyphens, as CLIPPINGS' script (whose later ``split()`` makes the whitespace collapse equivalent).
    """
    _variant(variant)
    text = text.replace("-\n", "").replace("\n", " ")
    text = text.translate(_ORIGINAL_DELETE) if variant == "original" else _PUNCT.sub(" ", text)
    return " ".join(text.encode("ascii", "ignore").decode().lower().split())


def original_scan_key(record_id: str) -> str:
    """The original script's "same scan" key of a record id: everything after its first ``_``."""
    return "_".join(str(record_id).split("_")[1:])


def ngram_sets(texts: Sequence[str], n: int = 1, variant: str = "capcse") -> list[set]:
    """The set of word n-grams of each cleaned text."""
    out = []
    for text in texts:
        words = clean_text(text, variant).split()
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


def _other_scans(i, j, scans):
    """Mask of the pairs whose records come from different scans (all pairs when ``scans`` is None)."""
    if scans is None:
        return np.ones(len(i), bool)
    codes = np.unique(np.asarray([str(s) for s in scans]), return_inverse=True)[1]
    return codes[i] != codes[j]


def jaccard_clusters(texts: Sequence[str], threshold: float, n: int = 1, *, variant: str = "capcse", scans=None) -> np.ndarray:
    """Connected components of the graph linking texts whose n-gram Jaccard is >= ``threshold``
    (pairs of records with the same ``scans`` key are never linked)."""
    i, j, _ = jaccard_pairs(ngram_sets(texts, n, variant), threshold)
    keep = _other_scans(i, j, scans)
    return _labels_from_pairs(len(texts), i[keep], j[keep])


@dataclass
class JaccardTuneResult:
    n: int
    threshold: float
    score: float
    variant: str = "capcse"
    curve: list = field(default_factory=list)  # (n, threshold, score)


def tune_jaccard(
    texts: Sequence[str],
    labels,
    *,
    variant: str = "capcse",
    ns: Sequence[int] | None = None,
    thresholds: Sequence[float] | None = None,
    scans=None,
) -> JaccardTuneResult:
    """Choose the n-gram size and the threshold maximising ARI on the given (validation) texts.

    ``ns`` and ``thresholds`` default to the ``variant``'s grid (:data:`JACCARD_VARIANTS`); the first
    maximum in grid order (n, then threshold, ascending) wins, as in the original loop.
    """
    from sklearn.metrics import adjusted_rand_score

    grid = _variant(variant)
    labels = np.asarray(labels)
    thresholds = sorted(float(t) for t in (grid["thresholds"] if thresholds is None else thresholds))
    best = None
    curve = []
    for n in grid["ns"] if ns is None else ns:
        i, j, jac = jaccard_pairs(ngram_sets(texts, n, variant), thresholds[0])
        keep = _other_scans(i, j, scans)
        i, j, jac = i[keep], j[keep], jac[keep]
        for t in thresholds:
            keep = jac >= t
            s = float(adjusted_rand_score(labels, _labels_from_pairs(len(texts), i[keep], j[keep])))
            curve.append((n, t, s))
            if best is None or s > best.score + 1e-12:
                best = JaccardTuneResult(n=n, threshold=t, score=s, variant=variant)
    best.curve = curve
    return best
