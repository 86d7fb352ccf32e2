"""Exact single-linkage clustering of embeddings at a cosine-distance threshold, at scale.

Convention (the same as scipy and scikit-learn): two records are linked when their cosine distance
``1 - cos(x, y)`` is **less than or equal to** the threshold ``t``. Single linkage at ``t`` is then the
set of connected components of that graph. This equals

* ``scipy.cluster.hierarchy.fcluster(linkage(X, 'single', 'cosine'), t, 'distance')`` (a flat cluster
  holds observations whose cophenetic distance is *no greater than* ``t``), and
* ``sklearn.cluster.DBSCAN(eps=t, min_samples=1, metric='cosine')`` (the eps-neighbourhood includes
  points at distance exactly ``eps``), which is what the original CLIPPINGS code used.

Every final decision "is this pair an edge?" is taken in float64 on the original rows, so the result is
the exact partition; faster arithmetic is only used to *discard* pairs under a proven bound.

Algorithms (``single_linkage(..., method=...)``):

``"brute"``  blocked float32 matrix products over the upper triangle of the similarity matrix; any
    pair within a proven float32 rounding margin of the threshold is re-checked in float64. O(N^2 d)
    time, O(block^2) memory. Used for small N and to list every edge (threshold sweeps).
``"certified"``  for large N, never an N x N matrix:
    1. *Candidate graph*: an inverted-file search (faiss spherical k-means into ``nlist`` lists,
       each record probing its ``nprobe`` nearest lists, each list scanned by one dense product); the
       candidate pairs within ``t`` are verified in float64 and their connected components computed. These are correct as far as they go (every link is real) but may be split
       where the approximate search missed a link.
    2. *Certificate*: each component A gets its centroid ``m_A`` and radius
       ``r_A = max_{x in A} ||x - m_A||`` (float64). For unit vectors, cosine distance <= t is
       ``||x - y|| <= eps = sqrt(2 t)``; by the triangle inequality ``||x - y|| >= ||m_A - m_B|| - r_A
       - r_B``, so two components can only contain a linking pair if ``||m_A - m_B|| <= r_A + r_B +
       eps``. That test is one inner product of augmented vectors
       ``[m_A, r_A, -c_A, 1] . [m_B, r_B, 1, -c_B] >= -eps^2/2`` with ``c = (|m|^2 - r^2 - 2 eps r)/2``,
       screened for all component pairs in bfloat16 (or float32) blocks with a proven rounding margin
       (:func:`_screen_margin`), the survivors re-tested in float64.
    3. Every member pair of every flagged component pair is checked in float64, the links found join
       components, and the final components are returned.
    The result is exact whatever the quality of step 1; that quality only decides the cost. Step 2
    costs O(C^2 d) for C step-1 components: cheap when records form tight groups, and quadratic (like
    brute force) for structureless data made of isolated points.
``"auto"``  brute below ``brute_limit`` records, certified above.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

__all__ = [
    "normalize_rows",
    "canonical_labels",
    "threshold_edges",
    "single_linkage",
    "LinkageInfo",
    "SingleLinkageTree",
]

_F32_EPS = 2.0**-24  # unit roundoff of float32


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (records x dims), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    return X


def _row_norms(X: np.ndarray, chunk: int = 65536) -> np.ndarray:
    norms = np.empty(len(X), dtype=np.float64)
    for s in range(0, len(X), chunk):
        block = X[s : s + chunk].astype(np.float64)
        norms[s : s + chunk] = np.sqrt(np.einsum("ij,ij->i", block, block))
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        bad = np.flatnonzero((norms == 0) | ~np.isfinite(norms))[:5]
        raise ValueError(f"cosine distance is undefined for zero or non-finite rows (e.g. rows {bad.tolist()})")
    return norms


def normalize_rows(X, dtype=np.float32) -> np.ndarray:
    """L2-normalise the rows (computed in float64, returned in ``dtype``); zero rows are an error."""
    X = _as_matrix(X)
    norms = _row_norms(X)
    out = np.empty(X.shape, dtype=dtype)
    for s in range(0, len(X), 65536):
        out[s : s + 65536] = X[s : s + 65536].astype(np.float64) / norms[s : s + 65536, None]
    return out


def canonical_labels(labels) -> np.ndarray:
    """Relabel so that clusters are numbered 0, 1, ... in order of their first record."""
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64)


def _pair_distances(X: np.ndarray, norms: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 32768) -> np.ndarray:
    """Exact float64 cosine distances of the given row pairs (gathered in chunks)."""
    out = np.empty(len(i), dtype=np.float64)
    for s in range(0, len(i), chunk):
        a = X[i[s : s + chunk]].astype(np.float64) / norms[i[s : s + chunk], None]
        b = X[j[s : s + chunk]].astype(np.float64) / norms[j[s : s + chunk], None]
        out[s : s + chunk] = 1.0 - np.einsum("ij,ij->i", a, b)
    return out


def _set_threads(n_threads: int | None) -> None:
    if not n_threads:
        return
    import torch

    torch.set_num_threads(int(n_threads))
    try:
        import faiss

        faiss.omp_set_num_threads(int(n_threads))
    except ImportError:  # pragma: no cover - faiss is only needed by the certified method
        pass


def _blocked_candidates(A: np.ndarray, B: np.ndarray | None, threshold: float, block: int, upper: bool, dtype=None):
    """All (i, j) with ``A[i] . B[j] >= threshold`` (products in ``dtype``, default float32); only i < j
    when ``upper`` (for a symmetric test: B is A, or B holds the same rows in another augmented form).
    The caller's threshold must already include the rounding margin of ``dtype``.

    Rows are screened by their block maximum first, so the element-wise scan only touches rows that
    hold a candidate. Yields arrays (i, j) per block.
    """
    import torch

    dtype = dtype or torch.float32
    At = torch.from_numpy(np.ascontiguousarray(A, dtype=np.float32)).to(dtype)
    Bt = At if B is None else torch.from_numpy(np.ascontiguousarray(B, dtype=np.float32)).to(dtype)
    n, m = At.shape[0], Bt.shape[0]
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        j_start = i0 if upper else 0
        for j0 in range(j_start, m, block):
            j1 = min(j0 + block, m)
            P = At[i0:i1] @ Bt[j0:j1].T
            if upper and j0 < i1:  # block meets the diagonal: keep j > i only
                ii = torch.arange(i0, i1).unsqueeze(1)
                jj = torch.arange(j0, j1).unsqueeze(0)
                P.masked_fill_(jj <= ii, -math.inf)
            rows = torch.nonzero(P.amax(dim=1) >= threshold).squeeze(1)
            if rows.numel() == 0:
                continue
            sub = P.index_select(0, rows)
            r, c = torch.nonzero(sub >= threshold, as_tuple=True)
            yield (rows[r] + i0).numpy().astype(np.int64), (c + j0).numpy().astype(np.int64)


def threshold_edges(X, t: float, *, block: int = 4096, n_threads: int | None = None):
    """Every pair ``i < j`` with cosine distance ``<= t``: returns (i, j, distance) arrays (float64 d).

    Blocked float32 products screen the pairs with a proven margin; survivors are decided in float64.
    O(N^2 d) time and O(block^2) memory: for small and medium N (validation sets, threshold sweeps).
    """
    X = _as_matrix(X)
    _set_threads(n_threads)
    norms = _row_norms(X)
    Xn = normalize_rows(X, np.float32)
    d = X.shape[1]
    margin = 4.0 * (d + 2) * _F32_EPS + 1e-7  # |float32 dot - exact dot| of unit vectors, with room
    ii, jj = [], []
    for i, j in _blocked_candidates(Xn, None, 1.0 - t - margin, block, upper=True):
        ii.append(i)
        jj.append(j)
    i = np.concatenate(ii) if ii else np.zeros(0, np.int64)
    j = np.concatenate(jj) if jj else np.zeros(0, np.int64)
    dist = _pair_distances(X, norms, i, j)
    keep = dist <= t
    return i[keep], j[keep], dist[keep]


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    graph = sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1].astype(np.int64)


@dataclass
class LinkageInfo:
    """What a clustering run did (for logs and benchmarks)."""

    method: str
    n: int
    threshold: float
    n_clusters: int = 0
    seconds: dict = field(default_factory=dict)
    n_candidate_edges: int = 0
    n_components_step1: int = 0
    n_screened_component_pairs: int = 0
    n_flagged_component_pairs: int = 0
    n_pairs_checked_step3: int = 0
    n_edges_step3: int = 0


def _knn_candidate_graph(Xn: np.ndarray, t: float, k: int, nlist: int | None, nprobe: int, seed: int, block: int = 4096):
    """Candidate links from an inverted-file partition, scanned with dense products.

    Spherical k-means (faiss, 10 iterations on a sample) gives ``nlist`` centroids (default
    ``sqrt(nprobe N)``, balancing the assignment, ``nlist`` products per record, against the scan,
    ``nprobe N / nlist``). Every record is stored in the list of its nearest centroid and probes its
    ``nprobe`` nearest lists; each list is scanned as one matrix product (queries x members), keeping
    the pairs within a float32 margin of ``1 - t`` (at most the ``k`` most similar per query and list,
    which bounds memory when ``t`` is large). Any subset of true links is fine here: the certificate
    finds whatever this misses.
    """
    import faiss
    import torch

    n, d = Xn.shape
    if nlist is None:
        nlist = int(round(math.sqrt(nprobe * n)))
    nlist = int(max(1, min(nlist, n // 8)))
    nprobe = int(min(nprobe, nlist))
    rng = np.random.default_rng(seed)
    n_train = min(n, max(32 * nlist, 4096))
    sample = Xn[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else Xn
    km = faiss.Kmeans(d, nlist, niter=10, seed=int(seed) % (2**31), spherical=True, verbose=False)
    km.cp.min_points_per_centroid = 1
    km.train(np.ascontiguousarray(sample))
    del sample
    probes = np.empty((n, nprobe), dtype=np.int64)
    for s in range(0, n, 65536):
        probes[s : s + 65536] = km.index.search(Xn[s : s + 65536], nprobe)[1]
    members = np.argsort(probes[:, 0], kind="stable")
    m_bounds = np.searchsorted(probes[members, 0], np.arange(nlist + 1))
    flat = probes.reshape(-1)
    queries = np.argsort(flat, kind="stable")
    q_bounds = np.searchsorted(flat[queries], np.arange(nlist + 1))
    queries //= nprobe
    del probes, flat
    margin = 4.0 * (d + 2) * _F32_EPS + 1e-7
    threshold = np.float32(1.0 - t - margin)
    sorted_rows = Xn[members]  # each list's members are now one contiguous slice
    ii, jj, ss = [], [], []
    for lst in range(nlist):
        m0, m1 = m_bounds[lst], m_bounds[lst + 1]
        qs = queries[q_bounds[lst] : q_bounds[lst + 1]]
        if m1 == m0 or len(qs) == 0:
            continue
        mem = members[m0:m1]
        bank = sorted_rows[m0:m1]
        for q0 in range(0, len(qs), block):
            qb = qs[q0 : q0 + block]
            P = np.take(Xn, qb, axis=0) @ bank.T
            r, c = np.nonzero(P >= threshold)
            if len(r) > k * len(qb):  # keep each query's k best in this list (memory bound for large t)
                top = torch.from_numpy(P).topk(min(k, P.shape[1]), dim=1)
                r, c = np.nonzero(top.values.numpy() >= threshold)
                c = top.indices.numpy()[r, c]
            a, b = qb[r], mem[c]
            keep = a != b
            ii.append(np.minimum(a[keep], b[keep]))
            jj.append(np.maximum(a[keep], b[keep]))
            ss.append(P[r[keep], c[keep]])
    del sorted_rows
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    key, first = np.unique(np.concatenate(ii) * n + np.concatenate(jj), return_index=True)
    return key // n, key % n, np.concatenate(ss)[first]


def _component_geometry(X: np.ndarray, norms: np.ndarray, labels: np.ndarray, n_comp: int, chunk: int = 65536):
    """Float64 centroid and radius (max distance of a member to the centroid) of every component."""
    d = X.shape[1]
    sums = np.zeros((n_comp, d), dtype=np.float64)
    for s in range(0, len(X), chunk):
        rows = X[s : s + chunk].astype(np.float64) / norms[s : s + chunk, None]
        lab = labels[s : s + chunk]
        sel = sparse.csr_matrix((np.ones(len(lab)), (lab, np.arange(len(lab)))), shape=(n_comp, len(lab)))
        sums += sel @ rows
    sizes = np.bincount(labels, minlength=n_comp).astype(np.float64)
    centroids = sums / sizes[:, None]
    radii = np.zeros(n_comp, dtype=np.float64)
    for s in range(0, len(X), chunk):
        rows = X[s : s + chunk].astype(np.float64) / norms[s : s + chunk, None]
        lab = labels[s : s + chunk]
        diff = rows - centroids[lab]
        np.maximum.at(radii, lab, np.sqrt(np.einsum("ij,ij->i", diff, diff)))
    # float64 rounding of the centroid and of the distances is ~1e-15; inflate so the bound stays safe
    radii = np.where(sizes > 1, radii * (1 + 1e-9) + 1e-12, 0.0)
    return centroids, radii


def _expand_member_pairs(a, b, starts, sizes, members, max_pairs: int):
    """Every (x, y) with x in component a[p] and y in component b[p]; yielded in bounded chunks."""
    counts = sizes[a] * sizes[b]
    p0 = 0
    while p0 < len(a):
        cum = np.cumsum(counts[p0:])
        p1 = p0 + max(1, int(np.searchsorted(cum, max_pairs, side="right")))
        pa, pb, pc = a[p0:p1], b[p0:p1], counts[p0:p1]
        total = int(pc.sum())
        owner = np.repeat(np.arange(len(pc)), pc)
        offset = np.arange(total) - np.repeat(np.cumsum(pc) - pc, pc)
        sb = sizes[pb][owner]
        x = members[starts[pa][owner] + offset // sb]
        y = members[starts[pb][owner] + offset % sb]
        yield x, y
        p0 = p1


def single_linkage(
    X,
    t: float,
    *,
    method: str = "auto",
    brute_limit: int = 20000,
    block: int = 4096,
    k: int = 16,
    nlist: int | None = None,
    nprobe: int = 4,
    screen_dtype: str = "bfloat16",
    seed: int = 0,
    n_threads: int | None = None,
    return_info: bool = False,
):
    """Exact single-linkage clusters of the rows of ``X`` at cosine-distance threshold ``t`` (``<=``).

    Returns canonical labels (``0, 1, ...`` in order of first record), and a :class:`LinkageInfo` when
    ``return_info``. Certified method: ``k``, ``nlist`` and ``nprobe`` set step 1's
    approximate k-NN search (default ``nlist = sqrt(nprobe N)``), ``screen_dtype`` (``bfloat16`` or ``float32``) the arithmetic of step 2's
    screen; see the module docstring.
    """
    X = _as_matrix(X)
    n = len(X)
    if not (t >= 0):
        raise ValueError(f"threshold must be >= 0, got {t}")
    if method == "auto":
        method = "brute" if n <= brute_limit else "certified"
    if method not in ("brute", "certified"):
        raise ValueError(f"unknown single-linkage method {method!r} (brute, certified, auto)")
    if screen_dtype not in ("bfloat16", "float32"):
        raise ValueError(f"screen_dtype must be bfloat16 or float32, got {screen_dtype!r}")
    info = LinkageInfo(method=method, n=n, threshold=float(t))
    if n == 0:
        return (np.zeros(0, np.int64), info) if return_info else np.zeros(0, np.int64)
    _set_threads(n_threads)
    t0 = time.perf_counter()
    if method == "brute" or n == 1:
        i, j, _ = threshold_edges(X, t, block=block)
        info.n_candidate_edges = len(i)
        labels = _components(n, i, j)
        info.seconds["brute"] = time.perf_counter() - t0
    else:
        labels = _certified(X, t, info, block=block, k=k, nlist=nlist, nprobe=nprobe, screen_dtype=screen_dtype, seed=seed)
    labels = canonical_labels(labels)
    info.n_clusters = int(labels.max()) + 1
    info.seconds["total"] = time.perf_counter() - t0
    return (labels, info) if return_info else labels


_BF16_EPS = 2.0**-8  # unit roundoff of bfloat16 (8-bit significand)


def _screen_margin(dtype_name: str, k: int, max_left: float, max_right: float, threshold: float) -> float:
    """A proven bound on |computed - exact| for one product of ``k``-vectors (plus threshold rounding).

    Inputs are rounded to the screen dtype (relative error u each), products are exact in float32 and
    accumulated in float32 (oneDNN's and PyTorch's CPU kernels accumulate bf16 products in float32),
    and a bf16 result is rounded once more. Each term is then within (2u + u^2) |a_i b_i| + k u32
    sum|a_i b_i| of exact, and sum |a_i b_i| <= |a| |b|. The bound is doubled for safety.
    """
    u = _BF16_EPS if dtype_name == "bfloat16" else _F32_EPS
    per_term = (2 * u + u * u + (k + 2) * _F32_EPS) * max_left * max_right
    output = u * (max_left * max_right + abs(threshold)) if dtype_name == "bfloat16" else 0.0
    return 2.0 * (per_term + output + u * abs(threshold)) + 1e-7


def _certified(X, t, info: LinkageInfo, *, block, k, nlist, nprobe, screen_dtype, seed) -> np.ndarray:
    import torch

    n, d = X.shape
    clock = time.perf_counter()
    norms = _row_norms(X)
    Xn = normalize_rows(X, np.float32)
    # step 1: approximate k-NN graph (faiss IVF), its links verified in float64
    ci, cj, sims = _knn_candidate_graph(Xn, t, k=k, nlist=nlist, nprobe=nprobe, seed=seed)
    # float32 similarities clearly past the threshold are links; only the borderline go to float64
    margin = 4.0 * (d + 2) * _F32_EPS + 1e-7
    keep = sims >= 1.0 - t + margin
    unsure = np.flatnonzero(~keep)
    keep[unsure] = _pair_distances(X, norms, ci[unsure], cj[unsure]) <= t
    ci, cj = ci[keep], cj[keep]
    del sims
    info.n_candidate_edges = int(len(ci))
    labels0 = _components(n, ci, cj)
    del ci, cj, keep, unsure, Xn
    n_comp = int(labels0.max()) + 1
    info.n_components_step1 = n_comp
    info.seconds["step1_knn"] = time.perf_counter() - clock

    # step 2: certificate over component pairs (screen, then exact float64 re-test of the survivors)
    clock = time.perf_counter()
    centroids, radii = _component_geometry(X, norms, labels0, n_comp)
    eps = math.sqrt(2.0 * t) * (1 + 1e-12) + 1e-12
    c = (np.einsum("ij,ij->i", centroids, centroids) - radii**2 - 2 * eps * radii) / 2
    left = np.hstack([centroids, radii[:, None], -c[:, None], np.ones((n_comp, 1))])
    right = np.hstack([centroids, radii[:, None], np.ones((n_comp, 1)), -c[:, None]])
    del centroids
    limit = -eps * eps / 2
    margin = _screen_margin(screen_dtype, d + 3, np.sqrt(np.einsum("ij,ij->i", left, left)).max(),
                            np.sqrt(np.einsum("ij,ij->i", right, right)).max(), limit)
    dtype = torch.bfloat16 if screen_dtype == "bfloat16" else torch.float32
    fa, fb = [], []
    n_screened = 0
    for a, b in _blocked_candidates(left, right, limit - margin, block, upper=True, dtype=dtype):
        n_screened += len(a)
        exact = np.einsum("ij,ij->i", left[a], right[b]) >= limit - 1e-9  # float64, ~1e-15 error
        fa.append(a[exact])
        fb.append(b[exact])
    fa = np.concatenate(fa) if fa else np.zeros(0, np.int64)
    fb = np.concatenate(fb) if fb else np.zeros(0, np.int64)
    info.n_flagged_component_pairs = int(len(fa))
    info.n_screened_component_pairs = int(n_screened)
    del left, right
    info.seconds["step2_certificate"] = time.perf_counter() - clock

    # step 3: exact check of every member pair of the flagged component pairs
    clock = time.perf_counter()
    order = np.argsort(labels0, kind="stable")
    sizes = np.bincount(labels0, minlength=n_comp)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    ea, eb = [], []
    for x, y in _expand_member_pairs(fa, fb, starts, sizes, order, max_pairs=1 << 20):
        info.n_pairs_checked_step3 += len(x)
        ok = _pair_distances(X, norms, x, y) <= t
        ea.append(labels0[x[ok]])
        eb.append(labels0[y[ok]])
    ea = np.concatenate(ea) if ea else np.zeros(0, np.int64)
    eb = np.concatenate(eb) if eb else np.zeros(0, np.int64)
    info.n_edges_step3 = int(len(ea))
    merged = _components(n_comp, ea, eb)
    info.seconds["step3_verify"] = time.perf_counter() - clock
    return merged[labels0]


class SingleLinkageTree:
    """The single-linkage hierarchy of a set of embeddings, to cut at many thresholds cheaply.

    Small N (``<= dendrogram_limit``): scipy's full dendrogram (``linkage(method='single',
    metric='cosine')``), cut with ``fcluster(..., 'distance')``. Larger N: the minimum spanning forest
    of the exact graph of pairs within ``t_max`` (single linkage at any ``t <= t_max`` is the set of
    components of the forest's edges of weight ``<= t``), so ``t_max`` bounds the thresholds you may ask.
    """

    def __init__(self, X, *, t_max: float | None = None, dendrogram_limit: int = 5000, n_threads: int | None = None):
        X = _as_matrix(X)
        self.n = len(X)
        self.t_max = t_max
        self.Z = None
        if self.n <= dendrogram_limit or t_max is None:
            if self.n > 20000:
                raise ValueError(f"a full dendrogram of {self.n} records needs an N x N distance matrix: give t_max")
            from scipy.cluster.hierarchy import linkage

            Xn = normalize_rows(X, np.float64)
            self.Z = linkage(Xn, method="single", metric="cosine") if self.n > 1 else None
            self.t_max = None
        else:
            i, j, dist = threshold_edges(X, t_max, n_threads=n_threads)
            # csgraph treats explicit zeros as missing edges: shift weights (order, hence MST, unchanged)
            graph = sparse.coo_matrix((dist + 1.0, (i, j)), shape=(self.n, self.n)).tocsr()
            mst = minimum_spanning_tree(graph).tocoo()
            self.mst_i, self.mst_j, self.mst_d = mst.row.astype(np.int64), mst.col.astype(np.int64), mst.data - 1.0

    def labels_at(self, t: float) -> np.ndarray:
        """Canonical labels of single linkage at threshold ``t`` (``<=``)."""
        if self.n <= 1:
            return np.zeros(self.n, np.int64)
        if self.Z is not None:
            from scipy.cluster.hierarchy import fcluster

            return canonical_labels(fcluster(self.Z, t, criterion="distance"))
        if t > self.t_max:
            raise ValueError(f"threshold {t} is above the t_max={self.t_max} this tree was built for")
        keep = self.mst_d <= t
        return canonical_labels(_components(self.n, self.mst_i[keep], self.mst_j[keep]))

    def merge_heights(self) -> np.ndarray:
        """Sorted distances at which clusters merge (the useful thresholds to try)."""
        return self.merges()[2]

    def merges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tree as a sequence of unions of records, in order of height: arrays ``(a, b, height)``.

        Joining ``a[k]`` and ``b[k]`` for every ``k`` with ``height[k] <= t`` (in any order) gives single
        linkage at ``t``; these are the edges of a minimum spanning forest. From the dendrogram, each row
        of ``Z`` joins two clusters, represented here by one record of each.
        """
        if self.n <= 1:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        if self.Z is None:
            order = np.argsort(self.mst_d, kind="stable")
            return self.mst_i[order], self.mst_j[order], self.mst_d[order]
        rep = np.concatenate([np.arange(self.n), np.zeros(len(self.Z), np.int64)])
        a = np.empty(len(self.Z), np.int64)
        b = np.empty(len(self.Z), np.int64)
        for r, (x, y) in enumerate(self.Z[:, :2].astype(np.int64)):  # a cluster is named by one of its records
            a[r], b[r] = rep[x], rep[y]
            rep[self.n + r] = a[r]
        order = np.argsort(self.Z[:, 2], kind="stable")  # single-linkage heights are already monotone
        return a[order], b[order], self.Z[order, 2]
