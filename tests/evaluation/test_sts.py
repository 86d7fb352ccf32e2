"""STS scoring: similarities, correlations, SentEval's aggregations, one encode per evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from capcse.errors import ConfigError
from capcse.evaluation import (CORRELATION_KEYS, aggregate, correlations, embed_unique, evaluate_sts,
                               score_sts_task, similarity_scores)
from capcse.evaluation.encoding import as_encode_fn
from capcse.evaluation.sts import resolve_split


def test_aggregations_against_hand_computed_example():
    # subset A: perfect agreement (r = 1); subset B: perfectly reversed (r = -1)
    a = ({"cosine": np.array([1.0, 2.0, 3.0])}, np.array([1.0, 2.0, 3.0]))
    b = ({"cosine": np.array([1.0, 2.0, 3.0, 4.0])}, np.array([4.0, 3.0, 2.0, 1.0]))
    agg = aggregate([a, b])
    # 'all' concatenates: pred [1,2,3,1,2,3,4], gold [1,2,3,4,3,2,1]
    # Pearson by hand: both means 16/7; sum(dp*dg) = -126/49, sum(dp^2) = sum(dg^2) = 364/49 -> -126/364
    assert agg["all"]["cosine_pearson"] == pytest.approx(100 * -126 / 364, abs=1e-9)
    # Spearman by hand: average ranks p = [1.5,3.5,5.5,1.5,3.5,5.5,7], g = [1.5,3.5,5.5,7,5.5,3.5,1.5];
    # centred (mean 4): sum(dp*dg) = -7.75, sum(dp^2) = sum(dg^2) = 26.5 -> -7.75 / 26.5
    assert agg["all"]["cosine_spearman"] == pytest.approx(100 * -7.75 / 26.5, abs=1e-9)
    # wmean = (3 * 100 + 4 * -100) / 7 ; mean = (100 - 100) / 2
    assert agg["wmean"]["cosine_spearman"] == pytest.approx(-100 / 7, abs=1e-9)
    assert agg["wmean"]["cosine_pearson"] == pytest.approx(-100 / 7, abs=1e-9)
    assert agg["mean"]["cosine_spearman"] == pytest.approx(0.0, abs=1e-9)


def test_similarity_scores_hand_computed():
    e1 = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    e2 = np.array([[0.0, 1.0], [0.0, 4.0], [1.0, 1.0]])
    s = similarity_scores(e1, e2)
    np.testing.assert_allclose(s["cosine"], [0.0, 16 / 20, 0.0])  # a zero vector has cosine 0
    np.testing.assert_allclose(s["dot"], [0.0, 16.0, 0.0])
    np.testing.assert_allclose(s["euclidean"], [-math.sqrt(2), -3.0, -math.sqrt(2)])
    np.testing.assert_allclose(s["manhattan"], [-2.0, -3.0, -2.0])
    with pytest.raises(ValueError):
        similarity_scores(e1, e2[:2])


def test_correlations_equal_scipy_with_ties():
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 6, size=200).astype(float)  # many ties, like STS gold scores
    preds = {"cosine": rng.normal(size=200).round(1), "dot": gold + rng.normal(size=200)}
    c = correlations(preds, gold)
    for name, p in preds.items():
        assert c[f"{name}_pearson"] == pytest.approx(100 * pearsonr(p, gold)[0], abs=1e-10)
        assert c[f"{name}_spearman"] == pytest.approx(100 * spearmanr(p, gold)[0], abs=1e-10)


def test_constant_prediction_gives_nan_not_a_crash():
    c = correlations({"cosine": np.ones(5)}, np.arange(5.0))
    assert math.isnan(c["cosine_pearson"]) and math.isnan(c["cosine_spearman"])


def test_score_task_per_subset_and_all(toy_sts, bow):
    encode = as_encode_fn(bow)
    table = embed_unique(encode, (s for d in toy_sts.values() for s in d.sentences1 + d.sentences2))
    res = score_sts_task("sts12", toy_sts, table)
    assert res.name == "STS12" and res.n_pairs == 65
    cos_all, gold_all = [], []
    for name, d in toy_sts.items():
        e1, e2 = bow(d.sentences1).astype(float), bow(d.sentences2).astype(float)
        cos = (e1 * e2).sum(1) / np.maximum(np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-12)
        assert res.subsets[name]["cosine_spearman"] == pytest.approx(100 * spearmanr(cos, d.scores)[0], abs=1e-9)
        assert res.subsets[name]["n_pairs"] == len(d.scores)
        cos_all.append(cos)
        gold_all.append(d.scores)
    expected = 100 * spearmanr(np.concatenate(cos_all), np.concatenate(gold_all))[0]
    assert res.spearman == pytest.approx(expected, abs=1e-9)
    d = res.to_dict()
    assert set(CORRELATION_KEYS) <= set(d) and set(d["subsets"]) == {"A", "B"}
    assert {"all", "wmean", "mean"} <= set(d)


def test_every_unique_sentence_is_encoded_once_in_one_call(toy_sts, bow):
    calls = []

    def counting(sentences):
        calls.append(list(sentences))
        return bow(sentences)

    # the same subsets under two tasks: STS-B shares most of its sentences with STS12-16
    datasets = {"sts12": ("test", toy_sts), "stsb": ("test", {"stsb": toy_sts["A"]})}
    res = evaluate_sts(counting, datasets=datasets)
    unique = {s for d in toy_sts.values() for s in d.sentences1 + d.sentences2}
    assert len(calls) == 1 and len(calls[0]) == len(unique) == len(set(calls[0]))
    assert res.tasks["stsb"].spearman == pytest.approx(res.tasks["sts12"].subsets["A"]["cosine_spearman"])
    assert res.avg == pytest.approx((res.tasks["stsb"].spearman + res.tasks["sts12"].spearman) / 2)


def test_encoder_objects_and_tensors_are_accepted(toy_sts, bow):
    torch = pytest.importorskip("torch")

    class Enc:
        def encode(self, sentences, batch_size=32):
            assert batch_size == 7
            return torch.from_numpy(bow(sentences))

    res = evaluate_sts(Enc(), datasets={"sts12": ("test", toy_sts)}, batch_size=7)
    ref = evaluate_sts(bow, datasets={"sts12": ("test", toy_sts)})
    assert res.tasks["sts12"].spearman == pytest.approx(ref.tasks["sts12"].spearman)
    with pytest.raises(ValueError, match="shape"):
        evaluate_sts(lambda s: np.zeros((len(s) + 1, 3)), datasets={"sts12": ("test", toy_sts)})


def test_split_rules():
    assert resolve_split("stsb", "dev") == "dev" and resolve_split("sts12", "test") == "test"
    with pytest.raises(ConfigError, match="test set only"):
        resolve_split("sts13", "dev")


def test_identical_pairs_tie_whatever_the_float_noise():
    """Pairs of identical sentences have cosine exactly 1; ~1e-7 of float32 noise must not rank them."""
    rng = np.random.default_rng(0)
    n = 40
    e1 = rng.normal(size=(n, 16)).astype(np.float32)
    e2 = rng.normal(size=(n, 16)).astype(np.float32)
    e2[:10] = e1[:10]  # ten identical pairs, all with gold 5
    e2[10:14] = e1[10:14] * 0.999 + 0.001 * rng.normal(size=(4, 16))  # near-paraphrases, gold 4.9
    gold = np.concatenate([np.full(10, 5.0), np.full(4, 4.9), rng.uniform(0, 4, n - 14)])
    clean = similarity_scores(e1, e2)["cosine"]
    assert (clean[:10] == 1.0).all()
    scores = []
    for seed in range(5):  # batch-dependent noise of the size float32 encoders produce
        noise = np.random.default_rng(seed).normal(scale=1e-7, size=e2.shape).astype(np.float32)
        noisy = similarity_scores(e1, e2 + noise * (np.arange(n) < 10)[:, None])
        scores.append(correlations(noisy, gold)["cosine_spearman"])
    assert max(scores) == min(scores) == correlations({"cosine": clean}, gold)["cosine_spearman"]
