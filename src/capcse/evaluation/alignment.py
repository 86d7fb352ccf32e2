"""Alignment and uniformity (Wang & Isola, ICML 2020), measured as in the SimCSE paper (Sec. 5).

On L2-normalised embeddings f(.):

* alignment  l_align   = E_{(x, x+) ~ p_pos} ||f(x) - f(x+)||^alpha,            alpha = 2
* uniformity l_uniform = log E_{x, y ~ p_data, i.i.d.} exp(-t ||f(x) - f(y)||^2),  t = 2

SimCSE takes STS-B pairs with a gold score > 4 (scores run 0-5) as p_pos and all STS-B sentences as
p_data. Lower is better for both. The expectation over p_data is taken over all pairs of distinct
sentences (Wang & Isola's ``torch.pdist`` form); duplicate sentences are counted once.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from capcse.evaluation.encoding import EmbeddingTable


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def alignment(x: np.ndarray, y: np.ndarray, alpha: float = 2.0) -> float:
    """Mean ``||x_i - y_i||^alpha`` over positive pairs (rows i), after L2 normalisation."""
    x, y = _l2(x), _l2(y)
    if x.shape != y.shape or len(x) == 0:
        raise ValueError(f"alignment needs two equal, non-empty [N, D] arrays; got {x.shape}, {y.shape}")
    return float(np.mean(np.linalg.norm(x - y, axis=1) ** alpha))


def uniformity(x: np.ndarray, t: float = 2.0, chunk: int = 2048) -> float:
    """``log`` of the mean of ``exp(-t ||x_i - x_j||^2)`` over all pairs i != j, after L2 normalisation.

    Computed block-wise from the Gram matrix (``||a-b||^2 = 2 - 2<a,b>`` on the unit sphere), so
    memory stays at ``chunk x N`` whatever N is.
    """
    x = _l2(x)
    n = len(x)
    if n < 2:
        raise ValueError(f"uniformity needs at least 2 embeddings, got {n}")
    total = 0.0
    for start in range(0, n, chunk):
        block = x[start:start + chunk]
        sq = np.clip(2.0 - 2.0 * (block @ x.T), 0.0, None)
        e = np.exp(-t * sq)
        rows = np.arange(len(block))
        e[rows, start + rows] = 0.0  # drop i == j
        total += float(e.sum())
    return float(np.log(total / (n * (n - 1))))


def sts_alignment_uniformity(data: Any, table: EmbeddingTable | None = None, encode=None, *,
                             threshold: float = 4.0, alpha: float = 2.0, t: float = 2.0,
                             split: str | None = None) -> dict[str, Any]:
    """SimCSE's measurement on an STS-B split: pairs with score > ``threshold`` for alignment, all
    (distinct) sentences for uniformity. Embeddings come from ``table`` (already encoded) or ``encode``.
    """
    s1, s2 = list(data.sentences1), list(data.sentences2)
    gold = np.asarray(data.scores, dtype=np.float64)
    texts = list(dict.fromkeys(s1 + s2))
    if table is None:
        if encode is None:
            raise ValueError("give either an EmbeddingTable or an encode function")
        from capcse.evaluation.encoding import embed_unique

        table = embed_unique(encode, texts)
    pos = np.flatnonzero(gold > threshold)
    if len(pos) == 0:
        raise ValueError(f"no pair has a score > {threshold}: cannot measure alignment")
    p1 = table.lookup([s1[i] for i in pos])
    p2 = table.lookup([s2[i] for i in pos])
    out: dict[str, Any] = {
        "alignment": alignment(p1, p2, alpha),
        "uniformity": uniformity(table.lookup(texts), t),
        "n_positive_pairs": int(len(pos)),
        "n_sentences": len(texts),
        "threshold": threshold,
        "alpha": alpha,
        "t": t,
    }
    if split is not None:
        out["split"] = split
    return out


def alignment_from_results(sts_subsets: Mapping[str, Any], table: EmbeddingTable, split: str) -> dict[str, Any]:
    """Alignment/uniformity on the STS-B data of an STS run (its single subset), reusing its embeddings."""
    (data,) = list(sts_subsets.values())
    return sts_alignment_uniformity(data, table, split=split)
