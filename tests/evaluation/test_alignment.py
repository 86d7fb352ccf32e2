"""Alignment and uniformity (Wang & Isola) against hand-computed tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capcse.evaluation import alignment, sts_alignment_uniformity, uniformity


def test_alignment_hand_computed():
    x = np.array([[2.0, 0.0], [0.0, 3.0]])  # normalised to e1, e2
    y = np.array([[1.0, 0.0], [1.0, 0.0]])  # e1, e1
    # ||e1 - e1||^2 = 0, ||e2 - e1||^2 = 2 -> mean 1
    assert alignment(x, y) == pytest.approx(1.0)
    # alpha = 1: (0 + sqrt 2) / 2
    assert alignment(x, y, alpha=1) == pytest.approx(math.sqrt(2) / 2)


def test_uniformity_hand_computed():
    x = np.array([[1.0, 0.0], [0.0, 5.0], [-1.0, 0.0]])  # e1, e2, -e1 after normalisation
    # squared distances of the pairs: (e1,e2)=2, (e1,-e1)=4, (e2,-e1)=2; t=2
    expected = math.log((math.exp(-4) + math.exp(-8) + math.exp(-4)) / 3)
    assert uniformity(x) == pytest.approx(expected, abs=1e-12)
    assert uniformity(x, chunk=1) == pytest.approx(expected, abs=1e-12)  # block-wise == whole
    assert uniformity(x, t=1) == pytest.approx(math.log((2 * math.exp(-2) + math.exp(-4)) / 3), abs=1e-12)


def test_uniformity_matches_pdist_on_random_data():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(300, 16))
    xt = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    ref = torch.pdist(xt, p=2).pow(2).mul(-2).exp().mean().log().item()  # Wang & Isola's formula
    assert uniformity(x, chunk=64) == pytest.approx(ref, abs=1e-10)


def test_sts_measurement_uses_pairs_above_4_and_distinct_sentences(bow):
    class D:
        sentences1 = ["a b", "c d", "e f", "a b"]
        sentences2 = ["a c", "c d e", "x y", "g h"]
        scores = np.array([4.5, 4.0, 5.0, 1.0])  # pairs 0 and 2 are > 4; 4.0 is not

    out = sts_alignment_uniformity(D, encode=bow)
    assert out["n_positive_pairs"] == 2 and out["n_sentences"] == 7  # "a b" counted once
    e = bow(["a b", "e f"]), bow(["a c", "x y"])
    assert out["alignment"] == pytest.approx(alignment(*e))
    texts = ["a b", "c d", "e f", "a c", "c d e", "x y", "g h"]
    assert out["uniformity"] == pytest.approx(uniformity(bow(texts)))
