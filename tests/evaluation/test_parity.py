"""Parity with sentence-transformers' EmbeddingSimilarityEvaluator (the reference implementation)."""

from __future__ import annotations

import pytest

from capcse.evaluation import CORRELATION_KEYS, evaluate_sts

SIMS = ["cosine", "euclidean", "manhattan", "dot"]


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


def _reference(model, s1, s2, gold, batch_size=16):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    ev = EmbeddingSimilarityEvaluator(s1, s2, list(map(float, gold)), batch_size=batch_size,
                                      similarity_fn_names=SIMS, write_csv=False)
    m = ev(model)
    return {f"{s}_{c}": 100 * m[f"{c}_{s}"] for s in SIMS for c in ("pearson", "spearman")}


def test_8_correlation_table_equals_sentence_transformers_on_small_data(minilm, pairs_type):
    s1 = ["A man is playing a guitar.", "A woman is slicing an onion.", "Two dogs run in a field.",
          "The cat sleeps on the sofa.", "A child rides a bike.", "Stocks fell sharply on Monday.",
          "He is cooking pasta.", "A plane is taking off.", "Kids are playing football.", "It is raining."]
    s2 = ["A man plays the guitar.", "Someone is cutting an onion.", "A dog is running on grass.",
          "A kitten naps on a couch.", "A man is reading a book.", "Markets dropped on Monday.",
          "A woman is swimming.", "An airplane departs.", "Children play soccer.", "The sun is shining."]
    gold = [4.8, 4.2, 3.6, 3.8, 0.6, 4.0, 0.2, 4.6, 4.4, 1.0]
    data = pairs_type("small", s1, s2, __import__("numpy").array(gold))
    ours = evaluate_sts(minilm, datasets={"stsb": ("dev", {"stsb": data})}).tasks["stsb"].scores
    ref = _reference(minilm, s1, s2, gold)
    for k in CORRELATION_KEYS:
        assert ours[k] == pytest.approx(ref[k], abs=1e-4 * 100), k  # x100 scale: 1e-4 in correlation units


@pytest.mark.slow
def test_stsb_dev_raw_parity_with_sentence_transformers(minilm, data_dir):
    """all-MiniLM-L6-v2 on raw STS-B dev: every correlation equals the reference to 1e-4."""
    from capcse.data import load_sts

    (data,) = load_sts("stsb", "dev", data_dir=data_dir, variant="raw").values()
    assert len(data) == 1500
    ours = evaluate_sts(minilm, datasets={"stsb": ("dev", {"stsb": data})}).tasks["stsb"].scores
    ref = _reference(minilm, data.sentences1, data.sentences2, data.scores)
    for k in CORRELATION_KEYS:
        assert abs(ours[k] - ref[k]) / 100 < 1e-4, (k, ours[k], ref[k])
    assert ours["cosine_spearman"] > 80  # all-MiniLM-L6-v2 is a strong STS model (sanity, not the claim)
