"""SupCon (Khosla et al. 2020, Eq. 2) against a hand-computed example."""

import math

import pytest
import torch

from capcse.losses.supcon import SupConLoss


def test_supcon_hand_computed():
    # unit vectors at angles 0, 90, 180 degrees and (1,1)/sqrt2; labels: 0, 0, 1, 1
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    tau = 0.5
    u = [(1, 0), (0, 1), (-1, 0), (1 / math.sqrt(2), 1 / math.sqrt(2))]
    dot = [[a[0] * b[0] + a[1] * b[1] for b in u] for a in u]
    total, anchors = 0.0, 0
    for i in range(4):
        denom = sum(math.exp(dot[i][a] / tau) for a in range(4) if a != i)
        pos = [p for p in range(4) if p != i and labels[p] == labels[i]]
        total += -sum(math.log(math.exp(dot[i][p] / tau) / denom) for p in pos) / len(pos)
        anchors += 1
    expected = total / anchors
    # a few values written out for the reader: anchor 0 has positive 1 (cos 0), negatives 2 (cos -1)
    # and 3 (cos .7071): term = -log(e^0 / (e^0 + e^-2 + e^1.4142))
    assert -math.log(1 / (1 + math.exp(-2) + math.exp(2 * 0.70710678))) == pytest.approx(1.658, abs=1e-3)
    assert SupConLoss(tau)(z, labels).item() == pytest.approx(expected, rel=1e-6)


def test_supcon_multi_positive_and_anchor_without_positive():
    torch.manual_seed(0)
    z = torch.randn(6, 5)
    labels = torch.tensor([3, 3, 3, 7, 9, 9])  # anchor 3 has no positive: excluded from the mean
    tau = 0.1
    zn = torch.nn.functional.normalize(z, dim=1)
    sim = zn @ zn.T / tau
    terms = []
    for i in range(6):
        pos = [p for p in range(6) if p != i and labels[p] == labels[i]]
        if not pos:
            continue
        denom = torch.logsumexp(torch.stack([sim[i, a] for a in range(6) if a != i]), 0)
        terms.append(-sum(sim[i, p] - denom for p in pos) / len(pos))
    assert SupConLoss(tau)(z, labels).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


def test_supcon_no_positive_pair_is_zero_with_grad():
    z = torch.randn(4, 3, requires_grad=True)
    loss = SupConLoss()(z, torch.arange(4))
    loss.backward()
    assert loss.item() == 0.0 and z.grad is not None
