"""SentEval's probe protocol on small synthetic data: folds, C selection, splits, pair features."""

from __future__ import annotations


import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from capcse.data import TransferData
from capcse.evaluation import ProbeConfig, evaluate_transfer, inner_kfold_probe, kfold_probe, split_probe
from capcse.evaluation.transfer import FAST_INNER_GRID, INNER_GRID, KFOLD_GRID, _senteval_order


def blobs(n=60, d=5, sep=6.0, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(scale=noise, size=(n, d))
    X[:, 0] += sep * (2 * y - 1)
    return X, y


def test_grids_are_senteval_sklearn_grids():
    assert INNER_GRID == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # 2^-2 .. 2^3 (InnerKFold, Split)
    assert KFOLD_GRID == (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # 2^-1 .. 2^5 (KFold: TREC, MRPC)
    fast = ProbeConfig.senteval(fast=True)
    assert fast.kfold == 5 and fast.inner_grid == FAST_INNER_GRID and ProbeConfig.senteval().kfold == 10


def test_inner_kfold_on_separable_data():
    X, y = blobs()
    cfg = ProbeConfig(kfold=3, n_jobs=1)
    r = inner_kfold_probe(X, y, cfg)
    assert r["acc"] == 100.0 and r["devacc"] == 100.0
    assert len(r["fold_acc"]) == 3 and len(r["C"]) == 3
    assert r["C"] == [0.25, 0.25, 0.25]  # every C ties at 100: SentEval's arg-max keeps the first
    assert r["fits"] == 3 * 3 * len(INNER_GRID) + 3 and r["not_converged"] == 0


def _reference_select(X, y, k, grid, seed):
    """Independent spelling-out of SentEval's KFoldClassifier choice of C."""
    scores = []
    for C in grid:
        accs = []
        for tr, te in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y):
            accs.append(LogisticRegression(C=C, random_state=seed).fit(X[tr], y[tr]).score(X[te], y[te]))
        scores.append(round(100 * np.mean(accs), 2))
    return grid[int(np.argmax(scores))], max(scores)


def test_kfold_probe_selects_c_like_senteval():
    X, y = blobs(n=120, d=20, sep=0.8, seed=1, noise=1.5)  # overlapping classes: C matters
    Xte, yte = blobs(n=80, d=20, sep=0.8, seed=2, noise=1.5)
    cfg = ProbeConfig(kfold=4, n_jobs=1)
    r = kfold_probe(X, y, Xte, yte, cfg)
    c, dev = _reference_select(X, y, 4, KFOLD_GRID, 1111)
    assert r["C"] == c and r["devacc"] == dev
    ref = LogisticRegression(C=c, random_state=1111).fit(X, y)
    assert r["acc"] == round(100 * ref.score(Xte, yte), 2)
    np.testing.assert_array_equal(r["yhat"], ref.predict(Xte))


def test_split_probe_chooses_c_on_dev():
    X, y = blobs(n=100, d=20, sep=0.7, seed=3, noise=1.5)
    Xd, yd = blobs(n=60, d=20, sep=0.7, seed=4, noise=1.5)
    Xt, yt = blobs(n=60, d=20, sep=0.7, seed=5, noise=1.5)
    r = split_probe(X, y, Xd, yd, Xt, yt, ProbeConfig(n_jobs=1))
    dev = [round(100 * LogisticRegression(C=C, random_state=1111).fit(X, y).score(Xd, yd), 2) for C in INNER_GRID]
    assert r["C"] == INNER_GRID[int(np.argmax(dev))] and r["devacc"] == max(dev)
    assert r["acc"] == round(100 * LogisticRegression(C=r["C"], random_state=1111).fit(X, y).score(Xt, yt), 2)


def test_parallel_fits_give_identical_results():
    X, y = blobs(n=90, d=10, sep=1.0, seed=6, noise=1.5)
    cfg = dict(kfold=3, inner_grid=(0.25, 1.0, 4.0))
    one = inner_kfold_probe(X, y, ProbeConfig(**cfg, n_jobs=1))
    two = inner_kfold_probe(X, y, ProbeConfig(**cfg, n_jobs=2))
    assert one == two


def test_senteval_sample_order():
    items = ["a b c", "a", "b c", "d", "e f"]
    labels = np.array([1, 1, 0, 0, 1])
    # SentEval sorts by (token count, label), stably
    got, lab = _senteval_order(items, labels, pairs=False)
    assert got == ["d", "a", "b c", "e f", "a b c"] and lab.tolist() == [0, 1, 0, 1, 1]
    pairs = [("a b", "c"), ("a", "b c d"), ("a", "b")]
    got, _ = _senteval_order(pairs, np.array([0, 1, 1]), pairs=True)
    assert got == [("a", "b"), ("a", "b c d"), ("a b", "c")]




def _sentences(rng, label_words, n):
    filler = [f"f{i}" for i in range(40)]
    items, labels = [], []
    for i in range(n):
        lab = i % len(label_words)
        words = list(rng.choice(filler, size=5)) + [label_words[lab]]
        rng.shuffle(words)
        items.append(" ".join(words))
        labels.append(lab)
    return items, np.array(labels)


def test_tasks_end_to_end_with_an_encoder_function(bow):
    rng = np.random.default_rng(0)
    mr = TransferData("mr", 2, {"all": _sentences(rng, ["good", "bad"], 60)}, False)
    trec = TransferData("trec", 3, {"train": _sentences(rng, ["who", "where", "when"], 60),
                          "test": _sentences(rng, ["who", "where", "when"], 30)}, False)
    sst = TransferData("sst2", 2, {s: _sentences(rng, ["good", "bad"], n) for s, n in (("train", 40), ("dev", 20), ("test", 20))},
             False)
    # MRPC-like: paraphrase iff both sentences carry the same marker word
    def pairs(n):
        items, labels = [], []
        for i in range(n):
            a = " ".join(rng.choice([f"f{j}" for j in range(40)], size=4)) + " alpha"
            b = " ".join(rng.choice([f"f{j}" for j in range(40)], size=4)) + (" alpha" if i % 2 else " beta")
            items.append((a, b))
            labels.append(i % 2)
        return items, np.array(labels)

    mrpc = TransferData("mrpc", 2, {"train": pairs(60), "test": pairs(30)}, True)
    res = evaluate_transfer(lambda s: bow(s, dim=1024), datasets={"mr": mr, "sst2": sst, "trec": trec, "mrpc": mrpc},
                            config=ProbeConfig(kfold=3, inner_grid=(0.5, 2.0), kfold_grid=(1.0, 4.0), n_jobs=1))
    for task in ("mr", "sst2", "trec", "mrpc"):
        assert res.tasks[task].acc == 100.0, task
    assert res.tasks["mrpc"].f1 == 100.0 and res.tasks["mr"].f1 is None
    assert res.tasks["trec"].n_train == 60 and res.tasks["trec"].n_test == 30 and res.tasks["trec"].n_classes == 3
    assert res.tasks["mr"].to_dict()["protocol"].startswith("3-fold CV")
    assert res.avg == 100.0
