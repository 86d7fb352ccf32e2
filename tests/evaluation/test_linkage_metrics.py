"""Linkage metrics against hand-computed values; tuning never reads test labels; Jaccard baseline."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from capcse.evaluation import linkage_metrics as lm
from capcse.evaluation.linkage_jaccard import clean_text, jaccard_clusters, jaccard_pairs, ngram_sets, tune_jaccard


def test_pairwise_prf_and_purity_by_hand():
    true = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 1, 1]
    # true pairs: (0,1),(0,2),(1,2),(3,4) = 4; predicted pairs: (0,1),(2,3),(2,4),(2,5),(3,4),(3,5),(4,5) = 7
    # shared: (0,1),(3,4) = 2
    prf = lm.pairwise_prf(true, pred)
    assert (prf["tp_pairs"], prf["pred_pairs"], prf["true_pairs"]) == (2, 7, 4)
    assert prf["precision"] == pytest.approx(2 / 7) and prf["recall"] == pytest.approx(0.5)
    assert prf["f1"] == pytest.approx(2 * (2 / 7) * 0.5 / (2 / 7 + 0.5))
    # predicted cluster 0 = {0,1}: majority true 0 (2); cluster 1 = {2,3,4,5}: majority true 1 (2) -> 4/6
    assert lm.purity(true, pred) == pytest.approx(4 / 6)
    scores = lm.linkage_scores(true, pred)
    assert scores["ari"] == pytest.approx(adjusted_rand_score(true, pred))
    assert scores["n_clusters_pred"] == 2 and scores["n_clusters_true"] == 3


def test_pair_counts_match_brute_force():
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 7, 60), rng.integers(0, 9, 60)
    same_t = {(a, b) for a, b in itertools.combinations(range(60), 2) if true[a] == true[b]}
    same_p = {(a, b) for a, b in itertools.combinations(range(60), 2) if pred[a] == pred[b]}
    assert lm.pair_counts(true, pred) == (len(same_t & same_p), len(same_p), len(same_t))


def test_combine_embeddings_is_weighted_mean_of_unit_vectors():
    img = np.array([[3.0, 0.0]])
    txt = np.array([[0.0, 0.5]])
    np.testing.assert_allclose(lm.combine_embeddings(img, txt, 0.5), [[np.sqrt(0.5), np.sqrt(0.5)]])
    np.testing.assert_allclose(lm.combine_embeddings(img, txt, 1.0), [[1.0, 0.0]])
    np.testing.assert_allclose(lm.combine_embeddings(img, txt, 0.0), [[0.0, 1.0]])
    with pytest.raises(ValueError):
        lm.combine_embeddings(img, txt, 1.5)


def _blobs(n_clusters, per, d, noise, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d))
    labels = np.repeat(np.arange(n_clusters), per)
    return centres[labels] + noise * rng.standard_normal((len(labels), d)), labels


def test_tune_threshold_finds_the_best_cut():
    X, y = _blobs(30, 4, 16, 0.3, 1)
    res = lm.tune_threshold(X, y)
    grid = np.linspace(0.0, 1.0, 41)
    from capcse.evaluation.linkage import single_linkage

    best_grid = max(adjusted_rand_score(y, single_linkage(X, t)) for t in grid)
    assert res.score >= best_grid - 1e-12  # exhaustive over merge heights: never worse than a grid
    assert adjusted_rand_score(y, single_linkage(X, res.threshold)) == pytest.approx(res.score)


def test_evaluate_split_tunes_on_validation_only(monkeypatch):
    Xv, yv = _blobs(20, 4, 16, 0.3, 2)
    Xt, yt = _blobs(20, 4, 16, 0.3, 3)
    seen = []
    real = lm.tune_threshold

    def spy(embeddings, labels, **kw):
        seen.append(labels)
        return real(embeddings, labels, **kw)

    monkeypatch.setattr(lm, "tune_threshold", spy)
    val = lm.LinkageSplit(labels=yv, embeddings=Xv, name="validation")
    out = lm.evaluate_split(val, lm.LinkageSplit(labels=yt, embeddings=Xt, name="test"))
    assert len(seen) == 1 and seen[0] is yv
    # the operating point does not depend on the test labels at all
    rng = np.random.default_rng(0)
    for fake in (rng.permutation(yt), np.zeros_like(yt), np.arange(len(yt))):
        other = lm.evaluate_split(val, lm.LinkageSplit(labels=fake, embeddings=Xt, name="test"))
        assert other["threshold"] == out["threshold"]
    assert out["test"]["ari"] == pytest.approx(adjusted_rand_score(yt, lm.single_linkage(Xt, out["threshold"])))


def test_evaluate_split_tunes_im_wt_on_validation_only(monkeypatch):
    rng = np.random.default_rng(4)
    yv, yt = np.repeat(np.arange(15), 3), np.repeat(np.arange(15), 3)
    img_v, txt_v = rng.standard_normal((45, 8)), rng.standard_normal((45, 8))
    img_t, txt_t = rng.standard_normal((45, 8)), rng.standard_normal((45, 8))
    img_v += 3 * rng.standard_normal((15, 8))[yv]  # images carry the cluster signal, captions do not
    seen = []
    real = lm.tune_threshold_and_weight
    monkeypatch.setattr(lm, "tune_threshold_and_weight", lambda i, t, labels, **kw: seen.append(labels) or real(i, t, labels, **kw))
    out = lm.evaluate_split(
        lm.LinkageSplit(labels=yv, image=img_v, text=txt_v), lm.LinkageSplit(labels=yt, image=img_t, text=txt_t), tune_im_wt=True
    )
    assert seen[0] is yv and out["im_wt"] >= 0.7


def test_text_cleaning_and_ngrams():
    assert clean_text("A dog, running!  On the\nGRASS.") == "a dog running on the grass"
    assert ngram_sets(["a b c", ""], 2) == [{"a b", "b c"}, set()]


@pytest.mark.parametrize("n", [1, 2])
def test_jaccard_pairs_equal_brute_force(n):
    rng = np.random.default_rng(n)
    words = [f"w{k}" for k in range(30)]
    texts = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(150)]
    sets = ngram_sets(texts, n)
    for t in (0.1, 0.25, 0.5, 1.0):
        i, j, jac = jaccard_pairs(sets, t)
        ref = {}
        for a, b in itertools.combinations(range(len(sets)), 2):
            union = len(sets[a] | sets[b])
            if union and len(sets[a] & sets[b]) / union >= t:
                ref[(a, b)] = len(sets[a] & sets[b]) / union
        got = dict(zip(zip(i.tolist(), j.tolist()), jac.tolist()))
        assert got.keys() == ref.keys()
        for key in ref:
            assert got[key] == pytest.approx(ref[key])


def test_jaccard_clusters_and_tuning():
    texts = ["a man rides a red bike", "man rides a red bike", "two dogs play in snow", "dogs play in the snow", "a cat"]
    assert jaccard_clusters(texts, 0.5).tolist() == [0, 0, 1, 1, 2]
    res = tune_jaccard(texts, [0, 0, 1, 1, 2])
    assert res.score == pytest.approx(1.0) and res.n in (1, 2, 3)


def test_combine_embeddings_of_different_widths_mixes_cosines():
    rng = np.random.default_rng(7)
    img, txt = rng.standard_normal((5, 6)), rng.standard_normal((5, 3))
    e = lm.combine_embeddings(img, txt, 0.3)
    cos = lambda A: (A / np.linalg.norm(A, axis=1, keepdims=True)) @ (A / np.linalg.norm(A, axis=1, keepdims=True)).T
    np.testing.assert_allclose(e @ e.T, 0.3 * cos(img) + 0.7 * cos(txt), atol=1e-12)
    np.testing.assert_allclose(lm.combine_embeddings(img, txt, 1.0) @ lm.combine_embeddings(img, txt, 1.0).T, cos(img), atol=1e-12)
