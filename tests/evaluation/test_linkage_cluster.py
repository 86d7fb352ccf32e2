"""Exact single linkage: equality with scipy's dendrogram cut and with DBSCAN(min_samples=1)."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN

from capcse.evaluation.linkage import SingleLinkageTree, canonical_labels, single_linkage, threshold_edges


def planted(n, d, mean_size, noise, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // mean_size + 1, d))
    lab = rng.integers(0, len(centres), n)
    return centres[lab] + noise * rng.standard_normal((n, d))


def scipy_labels(X, t):
    return canonical_labels(fcluster(linkage(X, method="single", metric="cosine"), t, criterion="distance"))


@pytest.mark.parametrize("n,d,seed", [(400, 16, 0), (1200, 8, 1), (900, 64, 2)])
@pytest.mark.parametrize("method", ["brute", "certified"])
def test_equals_scipy_fcluster(n, d, seed, method):
    X = planted(n, d, 5, 0.4, seed)
    Z = linkage(X, method="single", metric="cosine")
    for t in (0.0, 0.01, 0.05, 0.1, 0.3, 0.8) if method == "brute" else (0.0, 0.05, 0.3):
        ref = canonical_labels(fcluster(Z, t, criterion="distance"))
        # a deliberately weak candidate graph (k=3, one probe): the certificate must still make it exact
        got = single_linkage(X, t, method=method, k=3, nprobe=1)
        np.testing.assert_array_equal(got, ref, err_msg=f"t={t}")
        if method == "certified" and t == 0.05:
            f32 = single_linkage(X, t, method=method, k=3, nprobe=1, screen_dtype="float32")
            np.testing.assert_array_equal(f32, ref, err_msg=f"t={t} float32 screen")


def test_equals_dbscan_on_2000_points():
    X = planted(2000, 32, 4, 0.5, 3)
    for t in (0.02, 0.2):
        ref = canonical_labels(DBSCAN(eps=t, min_samples=1, metric="cosine").fit(X).labels_)
        np.testing.assert_array_equal(single_linkage(X, t, method="brute"), ref)
        np.testing.assert_array_equal(single_linkage(X, t, method="certified", k=4, nprobe=2), ref)


def test_certificate_repairs_missed_edges():
    X = planted(3000, 16, 6, 0.3, 4)
    t = 0.05
    got, info = single_linkage(X, t, method="certified", k=2, nprobe=1, return_info=True)
    assert info.n_edges_step3 > 0  # the approximate graph missed links; step 3 found them
    np.testing.assert_array_equal(got, scipy_labels(X, t))


def test_threshold_is_inclusive_like_scipy_and_dbscan():
    # cosine distances: a-b = 1 exactly, b-c = 1 exactly, a-c = 2
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    for t, expected in ((1.0, [0, 0, 0]), (0.999, [0, 1, 2])):
        np.testing.assert_array_equal(single_linkage(X, t, method="brute"), expected)
        np.testing.assert_array_equal(single_linkage(X, t, method="certified", k=2), expected)
        np.testing.assert_array_equal(scipy_labels(X, t), expected)
        db = DBSCAN(eps=t, min_samples=1, metric="cosine").fit(X).labels_
        np.testing.assert_array_equal(canonical_labels(db), expected)


def test_duplicates_link_at_zero_and_scale_is_ignored():
    X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(single_linkage(X, 0.0), [0, 0, 1])
    i, j, dist = threshold_edges(X, 0.0)
    assert (i.tolist(), j.tolist()) == ([0], [1]) and abs(dist[0]) < 1e-15


def test_zero_row_is_an_error():
    with pytest.raises(ValueError, match="zero"):
        single_linkage(np.array([[1.0, 0.0], [0.0, 0.0]]), 0.1)


def test_threshold_edges_lists_every_pair():
    X = planted(300, 8, 5, 0.5, 5)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - Xn @ Xn.T
    t = 0.1
    ii, jj = np.nonzero(np.triu(D <= t, k=1))
    i, j, dist = threshold_edges(X, t, block=64)
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(ii.tolist(), jj.tolist()))
    np.testing.assert_allclose(dist, D[i, j], atol=1e-12)


def test_tree_cuts_equal_fcluster_both_modes():
    X = planted(800, 16, 5, 0.4, 6)
    full = SingleLinkageTree(X)
    mst = SingleLinkageTree(X, t_max=0.3, dendrogram_limit=10)
    assert mst.Z is None and full.Z is not None
    for t in (0.0, 0.02, 0.1, 0.25, 0.3):
        ref = scipy_labels(X, t)
        np.testing.assert_array_equal(full.labels_at(t), ref)
        np.testing.assert_array_equal(mst.labels_at(t), ref)
    with pytest.raises(ValueError, match="t_max"):
        mst.labels_at(0.5)
    heights = full.merge_heights()
    assert np.all(np.diff(heights) >= 0) and len(heights) == len(X) - 1
