"""DALR cross-modal terms: angular margins (hand-computed), soft labels, false-negative masking, soft-label KL."""

from __future__ import annotations

import math

import pytest
import torch

from capcse.losses.dalr import (AngularMarginInfoNCE, SoftLabelAlignmentLoss, angular_margin_cosine,
                                false_negative_mask)
from capcse.losses.grounding import MCSEGroundingLoss
from capcse.losses.simcse import SimCSELoss




def test_angular_margin_hand_computed():
    cos = torch.tensor([[1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    out = angular_margin_cosine(cos, 0.2)
    assert out[0, 0].item() == 1.0 and out[1, 1].item() == 1.0          # positives untouched
    assert out[0, 1].item() == pytest.approx(math.cos(math.pi / 2 - 0.2), rel=1e-12)  # = sin 0.2
    assert out[1, 0].item() == pytest.approx(math.cos(math.pi / 3 - 0.2), rel=1e-12)
    # soft labels scale the margin by (1 - s): s = 0.5 -> half margin, s = 1 -> no margin
    soft = torch.tensor([[1.0, 0.5], [1.0, 1.0]], dtype=torch.float64)
    out = angular_margin_cosine(cos, 0.2, soft)
    assert out[0, 1].item() == pytest.approx(math.cos(math.pi / 2 - 0.1), rel=1e-12)
    assert out[1, 0].item() == pytest.approx(0.5, rel=1e-12)
    # a soft label below 0 is clamped (never a margin above m); an angle below the margin is clamped at 0
    soft_neg = torch.tensor([[1.0, -0.7], [1.0, 1.0]], dtype=torch.float64)
    assert angular_margin_cosine(cos, 0.2, soft_neg)[0, 1].item() == pytest.approx(math.sin(0.2), rel=1e-12)
    near = torch.tensor([[1.0, math.cos(0.1)], [0.0, 1.0]], dtype=torch.float64)
    assert angular_margin_cosine(near, 0.2)[0, 1].item() == pytest.approx(1.0, abs=1e-12)


def test_margin_infonce_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    c = torch.tensor([[1.0, 0.0], [math.cos(1.0), math.sin(1.0)]], dtype=torch.float64)
    tau, m = 0.1, 0.3
    # row 0: positive cos 1; negative angle 1.0 rad -> 0.7 rad
    l0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(math.cos(0.7) / tau)))
    # row 1: positive angle pi/2 - 1 (cos = sin 1); negative angle pi/2 -> pi/2 - 0.3
    pos = math.sin(1.0)
    l1 = -math.log(math.exp(pos / tau) / (math.exp(pos / tau) + math.exp(math.cos(math.pi / 2 - m) / tau)))
    assert AngularMarginInfoNCE(tau, m)(a, c).item() == pytest.approx((l0 + l1) / 2, rel=1e-10)


def test_zero_margin_is_plain_infonce():
    g = torch.Generator().manual_seed(0)
    a, c = torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(6, 8, generator=g, dtype=torch.float64)
    assert AngularMarginInfoNCE(0.05, 0.0)(a, c).item() == pytest.approx(SimCSELoss(0.05)(a, c).item(), rel=1e-12)
    two = torch.stack([a, a.flip(0)])
    assert AngularMarginInfoNCE(0.05, 0.0)(two, c).item() == pytest.approx(MCSEGroundingLoss(0.05)(two, c).item(),
                                                                            rel=1e-12)


def test_margin_makes_the_loss_larger_and_aligned_simplex_is_the_minimum(simplex):
    n = 5
    img = simplex(n)
    loss = AngularMarginInfoNCE(0.05, 0.18)
    text = img.clone().requires_grad_(True)
    value = loss(text, img)
    theta = math.acos(-1 / (n - 1)) - 0.18
    expected = math.log(1 + (n - 1) * math.exp((math.cos(theta) - 1) / 0.05))
    assert value.item() == pytest.approx(expected, rel=1e-9)
    assert value.item() > AngularMarginInfoNCE(0.05, 0.0)(img, img).item()
    value.backward()
    assert text.grad.abs().max().item() < 1e-9
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        assert loss(img + 0.05 * torch.randn(n, n, generator=g, dtype=torch.float64), img).item() >= value.item()


def test_false_negative_mask_and_masked_loss_remove_exactly_the_flagged_pairs():
    sim = torch.tensor([[1.0, 0.95, 0.1], [0.95, 1.0, 0.5], [0.1, 0.5, 1.0]])
    mask = false_negative_mask(sim, threshold=0.9)
    assert mask.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    by_id = false_negative_mask(ids=[7, 8, 7])
    assert by_id.tolist() == [[False, False, True], [False, False, False], [True, False, False]]
    both = false_negative_mask(sim, 0.9, ids=[7, 8, 7])
    assert both.tolist() == [[False, True, True], [True, False, False], [True, False, False]]
    assert false_negative_mask() is None

    g = torch.Generator().manual_seed(2)
    a, c = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    loss = AngularMarginInfoNCE(0.1, 0.2)
    logits = loss.logits(a, c)
    manual = []
    for i in range(3):
        keep = [j for j in range(3) if j == i or not both[i, j]]
        manual.append(-logits[i, i] + torch.logsumexp(logits[i, keep], 0))
    assert loss(a, c, ignore=both).item() == pytest.approx(torch.stack(manual).mean().item(), rel=1e-12)


def test_soft_label_alignment_hand_computed_and_minimum():
    loss = SoftLabelAlignmentLoss(student_temperature=1.0, target_temperature=1.0)
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)   # S_TI = identity
    tt = torch.zeros(2, 2, dtype=torch.float64)                             # uniform text target
    p = math.e / (math.e + 1)                                                # softmax([1, 0])
    kl_uniform = 0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p))
    assert loss(text, images, tt, None).item() == pytest.approx(kl_uniform, rel=1e-12)
    assert loss(text, images, None, torch.eye(2, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(text, images, tt, torch.eye(2, dtype=torch.float64)).item() == pytest.approx(kl_uniform / 2, rel=1e-12)
    with pytest.raises(ValueError):
        loss(text, images, None, None)


def test_soft_label_alignment_margin_reduces_the_off_diagonal_angles():
    """DALR computes S_TI with its text ArcSimilarity: negatives' angles shrink by the margin m."""
    m = 0.3
    loss = SoftLabelAlignmentLoss(student_temperature=1.0, target_temperature=1.0, margin=m)
    eye = torch.eye(2, dtype=torch.float64)                 # S_TI = identity: negatives at pi/2
    uniform = torch.zeros(2, 2, dtype=torch.float64)
    # each row of S_TI becomes [1, cos(pi/2 - m)] = [1, sin m]; KL(uniform || softmax of that row)
    p = math.exp(1) / (math.exp(1) + math.exp(math.sin(m)))
    expected = 0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p))
    assert loss(eye, eye, uniform, None).item() == pytest.approx(expected, rel=1e-12)
    assert loss(eye, eye, None, uniform).item() == pytest.approx(expected, rel=1e-12)
    assert SoftLabelAlignmentLoss(1.0, 1.0)(eye, eye, uniform, None).item() > expected   # no margin: farther from uniform
