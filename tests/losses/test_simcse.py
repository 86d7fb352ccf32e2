"""SimCSE loss against a computation written out by hand."""

import math

import pytest
import torch

from capcse.losses.simcse import SimCSELoss


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a)) / math.sqrt(sum(y * y for y in b))


def _hand_loss(h, hp, hn, tau, w):
    total = 0.0
    for i in range(len(h)):
        num = math.exp(_cos(h[i], hp[i]) / tau)
        den = sum(math.exp(_cos(h[i], hp[j]) / tau) for j in range(len(h)))
        if hn is not None:
            den += sum(math.exp(_cos(h[i], hn[j]) / tau + (w if j == i else 0.0)) for j in range(len(h)))
        total += -math.log(num / den)
    return total / len(h)


def T(x):
    return torch.tensor(x, dtype=torch.float64)


H = [[1.0, 0.0, 0.5], [0.2, 1.0, 0.0], [0.0, 0.3, 1.0]]
HP = [[0.9, 0.1, 0.4], [0.1, 0.8, 0.3], [0.2, 0.2, 0.9]]
HN = [[-1.0, 0.2, 0.1], [0.5, 0.5, 0.5], [1.0, 0.0, -0.2]]


def test_unsupervised_matches_hand_computation():
    got = SimCSELoss(temperature=0.05)(T(H), T(HP))
    assert got.item() == pytest.approx(_hand_loss(H, HP, None, 0.05, 0.0), rel=1e-5)


@pytest.mark.parametrize("w", [0.0, 1.0, -2.0])
def test_supervised_with_hard_negative_weight(w):
    got = SimCSELoss(temperature=0.1, hard_negative_weight=w)(T(H), T(HP), T(HN))
    assert got.item() == pytest.approx(_hand_loss(H, HP, HN, 0.1, w), rel=1e-5)


def test_weight_only_on_own_hard_negative():
    loss = SimCSELoss(temperature=1.0, hard_negative_weight=3.0)
    base = SimCSELoss(temperature=1.0)
    a, p, n = T(H), T(HP), T(HN)
    diff = loss.logits(a, p, n) - base.logits(a, p, n)
    expected = torch.zeros(3, 6, dtype=torch.float64)
    expected[0, 3] = expected[1, 4] = expected[2, 5] = 3.0
    torch.testing.assert_close(diff, expected)


def test_perfect_alignment_is_minimum_and_scale_invariant():
    a = torch.eye(4)
    perfect = SimCSELoss(0.05)(a, a.clone())
    worse = SimCSELoss(0.05)(a, torch.roll(a, 1, 0))
    assert perfect < worse
    # cosine similarity: scaling embeddings changes nothing
    assert SimCSELoss(0.05)(3 * a, a).item() == pytest.approx(perfect.item())


def test_offset_selects_the_local_rows_of_a_gathered_batch():
    torch.manual_seed(0)
    full_a, full_p = torch.randn(6, 5), torch.randn(6, 5)
    loss = SimCSELoss(0.05)
    rows = loss(full_a, full_p, reduction="none")
    local = loss(full_a[2:4], full_p, offset=2, reduction="none")
    torch.testing.assert_close(local, rows[2:4])


def test_bad_temperature():
    with pytest.raises(ValueError):
        SimCSELoss(temperature=0)


def test_offset_moves_the_hard_negative_weight_with_the_local_rows():
    """Under DDP anchor i of process r is row offset+i of the gathered batch: its own hard negative
    (the weighted one) is gathered negative offset+i, exactly as in the single-process batch."""
    torch.manual_seed(1)
    a, p, n = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
    loss = SimCSELoss(0.1, hard_negative_weight=2.0)
    rows = loss(a, p, n, reduction="none")
    torch.testing.assert_close(loss(a[3:], p, n, offset=3, reduction="none"), rows[3:])
    shifted = loss.logits(a[3:], p, n, offset=3) - SimCSELoss(0.1).logits(a[3:], p, n, offset=3)
    assert shifted.nonzero().tolist() == [[0, 9], [1, 10], [2, 11]]


def test_low_precision_logits_are_reduced_in_float32():
    a, p = torch.randn(4, 8).bfloat16(), torch.randn(4, 8).bfloat16()
    got = SimCSELoss(0.05)(a, p)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(SimCSELoss(0.05)(a.float(), p.float()).item(), rel=2e-2)
