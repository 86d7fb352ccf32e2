"""Exact threshold tuning: the union-by-union sweep against brute force (every merge height, 2,000 records)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from capcse.evaluation import linkage_metrics as lm
from capcse.evaluation.linkage import SingleLinkageTree, single_linkage


def _planted(n, d=16, noise=0.35, seed=0):
    """Geometric cluster sizes (mean 3, many singletons), Gaussian centres, Gaussian noise; shuffled."""
    rng = np.random.default_rng(seed)
    sizes = rng.geometric(1 / 3, size=n)
    k = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    y = np.repeat(np.arange(k), sizes[:k])[:n]
    X = rng.standard_normal((k, d))[y] + noise * rng.standard_normal((n, d))
    perm = rng.permutation(n)
    return X[perm], y[perm]


def test_ari_from_pair_counts_by_hand_and_equals_sklearn():
    # true {0,1,2},{3,4}; pred {0,1},{2,3,4}: both = (0,1),(3,4) = 2; pred pairs 1 + 3 = 4; true pairs 3 + 1 = 4
    # ordered: tp 4, fp 4, fn 4, tn 25 - 5 - 12 = 8 -> 2 (4*8 - 4*4) / ((4+4)(4+8) + (4+4)(4+8)) = 32 / 192 = 1/6
    true, pred = [0, 0, 0, 1, 1], [0, 0, 1, 1, 1]
    assert lm.pair_counts(true, pred) == (2, 4, 4)
    assert lm.ari_from_pair_counts(5, 2, 4, 4) == pytest.approx(1 / 6)
    assert lm.ari_from_pair_counts(5, 2, 4, 4) == adjusted_rand_score(true, pred)
    assert lm.ari_from_pair_counts(4, 0, 0, 0) == 1.0  # all singletons on both sides: full agreement
    rng = np.random.default_rng(0)
    for _ in range(20):
        t, p = rng.integers(0, 6, 50), rng.integers(0, 8, 50)
        assert lm.ari_from_pair_counts(50, *lm.pair_counts(t, p)) == adjusted_rand_score(t, p)  # bit-identical


def test_sweep_by_hand_on_a_line():
    # four points on a line joined at heights 0.1 (0-1), 0.2 (2-3), 0.5 (1-2); true clusters {0,1},{2,3}
    a, b, h = np.array([0, 2, 1]), np.array([1, 3, 2]), np.array([0.1, 0.2, 0.5])
    heights, scores, before = lm.sweep_merges(a, b, h, [0, 0, 1, 1])
    np.testing.assert_array_equal(heights, [0.1, 0.2, 0.5])
    assert before == 0.0  # all singletons vs two pairs: ARI 0
    assert scores[1] == 1.0  # at 0.2 the partition is the truth
    assert scores[2] == 0.0  # one cluster: ARI 0
    assert scores[0] == adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2])
    _, f1, _ = lm.sweep_merges(a, b, h, [0, 0, 1, 1], metric="f1")
    assert f1[1] == 1.0 and f1[2] == pytest.approx(2 * (2 / 6) / (2 / 6 + 1))  # precision 2/6, recall 1


def test_tuning_is_exact_against_brute_force_on_2000_records():
    X, y = _planted(2000)
    tree = SingleLinkageTree(X)
    heights, scores, before = lm.sweep_merges(*tree.merges(), y)
    assert len(heights) == 1999  # continuous data: every merge at its own height
    # brute force: cut the dendrogram (scipy's fcluster) at every distinct height and count pairs afresh
    from scipy.cluster.hierarchy import fcluster

    def pairs(labels):
        c = np.unique(labels, return_counts=True)[1]
        return int((c * (c - 1) // 2).sum())

    def ari_at(t):
        pred = fcluster(tree.Z, t, criterion="distance")
        return lm.ari_from_pair_counts(len(y), pairs(pred * (y.max() + 1) + y), pairs(pred), pairs(y))

    brute = np.array([ari_at(t) for t in heights])
    np.testing.assert_array_equal(scores, brute)
    for k in np.linspace(0, len(heights) - 1, 25).astype(int):  # and scikit-learn's own ARI at a sample
        assert scores[k] == adjusted_rand_score(y, tree.labels_at(heights[k]))
    res = lm.tune_threshold(X, y)
    assert res.score == max(brute.max(), before)
    k = int(np.argmax(brute))
    assert heights[k] <= res.threshold < heights[k + 1]  # the middle of the winning interval
    # the reported score is the ARI that the returned threshold gives on these records
    assert adjusted_rand_score(y, single_linkage(X, res.threshold)) == res.score


def test_minimum_spanning_forest_path_gives_the_same_sweep():
    X, y = _planted(600, seed=3)
    full = SingleLinkageTree(X)
    forest = SingleLinkageTree(X, t_max=0.6, dendrogram_limit=100)
    assert forest.Z is None
    h1, s1, _ = lm.sweep_merges(*full.merges(), y)
    h2, s2, _ = lm.sweep_merges(*forest.merges(), y)
    inside = h1 <= 0.6
    np.testing.assert_allclose(h2, h1[inside], atol=1e-12)
    np.testing.assert_array_equal(s2, s1[inside])


def test_tuning_beats_sampled_heights_and_keeps_singletons_and_duplicates():
    # all-singletons wins when every record is its own cluster
    X, _ = _planted(50, seed=5)
    res = lm.tune_threshold(X, np.arange(50))
    assert res.score == 1.0 and res.threshold < SingleLinkageTree(X).merge_heights()[0]
    # exact duplicates merge at height 0: all-singletons is not reachable, the threshold stays >= 0
    Xd = np.vstack([X[:3], X[:3]])
    res = lm.tune_threshold(Xd, [0, 1, 2, 0, 1, 2])
    assert res.score == 1.0 and 0.0 <= res.threshold
    assert adjusted_rand_score([0, 1, 2, 0, 1, 2], single_linkage(Xd, res.threshold)) == 1.0
