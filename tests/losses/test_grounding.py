"""MCSE grounding loss: hand-computed example, minimum at a perfectly aligned batch, masking."""

from __future__ import annotations

import math

import pytest
import torch

from capcse.losses.grounding import MCSEGroundingLoss, masked_cross_entropy, same_item_mask
from capcse.losses.simcse import SimCSELoss




def test_hand_computed_two_pairs():
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    images = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)  # cos: [[1, 1/sqrt2], [0, 1/sqrt2]]
    tau = 0.5
    r = 1 / math.sqrt(2)
    l0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(r / tau)))
    l1 = -math.log(math.exp(r / tau) / (math.exp(0.0) + math.exp(r / tau)))
    assert MCSEGroundingLoss(tau)(text, images).item() == pytest.approx((l0 + l1) / 2, rel=1e-12)


def test_two_views_are_averaged():
    g = torch.Generator().manual_seed(0)
    v1, v2, img = (torch.randn(4, 8, generator=g, dtype=torch.float64) for _ in range(3))
    loss = MCSEGroundingLoss(0.05)
    both = loss(torch.stack([v1, v2]), img).item()
    assert both == pytest.approx((loss(v1, img).item() + loss(v2, img).item()) / 2, rel=1e-12)
    # one direction only (text -> image), like MCSE: equals SimCSE's InfoNCE with images as candidates
    assert loss(v1, img).item() == pytest.approx(SimCSELoss(0.05)(v1, img).item(), rel=1e-12)


def test_perfectly_aligned_batch_is_the_minimum(simplex):
    n, tau = 5, 0.05
    img = simplex(n)
    text = img.clone().requires_grad_(True)
    loss = MCSEGroundingLoss(tau)
    value = loss(text, img)
    # analytic value: positive cosine 1, every negative -1/(n-1)
    expected = math.log(1 + (n - 1) * math.exp((-1 / (n - 1) - 1) / tau))
    assert value.item() == pytest.approx(expected, rel=1e-9)
    value.backward()
    assert text.grad.abs().max().item() < 1e-10          # a stationary point
    g = torch.Generator().manual_seed(0)
    for _ in range(50):                                    # and no perturbation does better
        moved = img + 0.05 * torch.randn(n, n, generator=g, dtype=torch.float64)
        assert loss(moved, img).item() >= value.item()


def test_mask_removes_exactly_the_flagged_pairs():
    g = torch.Generator().manual_seed(1)
    text, img = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    ignore = torch.zeros(4, 4, dtype=torch.bool)
    ignore[0, 2] = ignore[3, 1] = ignore[1, 1] = True  # (1, 1) is a positive: never removed
    tau = 0.1
    logits = (torch.nn.functional.normalize(text, dim=-1) @ torch.nn.functional.normalize(img, dim=-1).T) / tau
    manual = []
    for i in range(4):
        keep = [j for j in range(4) if j == i or not ignore[i, j]]
        manual.append(-logits[i, i] + torch.logsumexp(logits[i, keep], 0))
    got = MCSEGroundingLoss(tau)(text, img, ignore=ignore)
    assert got.item() == pytest.approx(torch.stack(manual).mean().item(), rel=1e-12)
    # a flagged candidate gets no gradient from the rows that flag it
    img_req = img.clone().requires_grad_(True)
    single = torch.zeros(1, 4, dtype=torch.bool)
    single[0, 2] = True
    lg = (torch.nn.functional.normalize(text[:1], dim=-1) @ torch.nn.functional.normalize(img_req, dim=-1).T) / tau
    masked_cross_entropy(lg, single).backward()
    assert img_req.grad[2].abs().max().item() == 0.0
    assert img_req.grad[1].abs().max().item() > 0.0


def test_same_item_mask():
    m = same_item_mask([0, 1, 0, 2, 1])
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[0, 2] = expected[2, 0] = expected[1, 4] = expected[4, 1] = True
    assert torch.equal(m, expected)
