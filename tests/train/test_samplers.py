"""m-per-class and hard-negative batch samplers: the contents of their batches."""

from collections import Counter

import numpy as np
import pytest

from capcse.train.samplers import HardNegativeBatchSampler, MPerClassBatchSampler, class_embeddings, nearest_classes


def _labels():
    # 10 classes of sizes 2..6, plus two singletons (dropped by default)
    return [c for c in range(10) for _ in range(2 + c % 5)] + [100, 101]


def test_m_per_class_batches():
    labels = np.array(_labels())
    sampler = MPerClassBatchSampler(labels, m=2, batch_size=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10 // 4
    seen_classes = []
    for batch in batches:
        assert len(batch) == 8
        counts = Counter(labels[batch].tolist())
        assert len(counts) == 4 and set(counts.values()) == {2}  # 4 classes x 2 records
        assert len(set(batch)) == 8  # no record twice in a batch
        assert not ({100, 101} & set(counts))  # singletons cannot form a positive pair
        seen_classes.extend(counts)
    assert len(seen_classes) == len(set(seen_classes))  # a class appears once per epoch


def test_m_per_class_pads_small_classes_and_is_seeded():
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3])
    s = MPerClassBatchSampler(labels, m=3, batch_size=6, seed=5)
    a, b = list(s), list(MPerClassBatchSampler(labels, m=3, batch_size=6, seed=5))
    assert a == b
    for batch in a:
        counts = Counter(labels[batch].tolist())
        assert set(counts.values()) == {3}
        for c in counts:
            members = {i for i in batch if labels[i] == c}
            assert len(members) == min(3, int((labels == c).sum()))  # repeats only when the class is short
    assert list(s) != a or len(a) == 1  # the next epoch draws a new order


def test_m_per_class_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divide"):
        MPerClassBatchSampler([0, 0, 1, 1], m=3, batch_size=4)
    with pytest.raises(ValueError, match="cannot fill"):
        MPerClassBatchSampler([0, 0, 1, 1], m=2, batch_size=8)


def test_nearest_classes_exact_and_self_first():
    V = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    nb = nearest_classes(V, 2)
    assert nb.tolist() == [[0, 1], [1, 0], [2, 1], [3, 2]]


def test_hard_negative_batches_follow_the_refreshed_neighbours():
    rng = np.random.default_rng(0)
    n_classes, per = 12, 3
    labels = np.repeat(np.arange(n_classes), per)
    # classes 2j and 2j+1 are near each other in embedding space, far from the rest
    pair_centre = rng.standard_normal((n_classes // 2, 16)) * 10
    centres = pair_centre[np.arange(n_classes) // 2] + rng.standard_normal((n_classes, 16))
    emb = centres[labels] + 0.01 * rng.standard_normal((len(labels), 16))
    s = HardNegativeBatchSampler(labels, m=2, k=2, batch_size=8, seed=0)
    s.refresh(emb)
    assert all(set(row) == {c, c ^ 1} for c, row in enumerate(s.neighbours.tolist()))
    anchors_seen = 0
    for batch in s:
        counts = Counter(labels[batch].tolist())
        assert set(counts.values()) == {2}
        assert all((c ^ 1) in counts for c in counts)  # each class arrives with its hard negative
        anchors_seen += 2
    assert anchors_seen == len(s) * 2 == n_classes


def test_class_embeddings_mean_of_unit_vectors():
    emb = np.array([[2.0, 0], [0, 1], [0, 5]])
    out = class_embeddings(emb, ["a", "a", "b"], ["a", "b"])
    np.testing.assert_allclose(out, [[np.sqrt(0.5), np.sqrt(0.5)], [0, 1]], atol=1e-6)
