"""Symmetric CLIP InfoNCE against a hand-computed example."""

import math

import pytest
import torch

from capcse.losses.clip import CLIPLoss


def test_clip_loss_hand_computed():
    img = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    txt = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    loss = CLIPLoss(temperature=0.5, learnable_temperature=False)
    # cosines: I0.T0 = 1, I0.T1 = .7071, I1.T0 = 0, I1.T1 = .7071 ; scale 2
    c = 1 / math.sqrt(2)
    L = [[2 * 1, 2 * c], [2 * 0, 2 * c]]

    def ce(row, k):
        return -math.log(math.exp(row[k]) / sum(math.exp(v) for v in row))

    img_to_txt = (ce(L[0], 0) + ce(L[1], 1)) / 2
    txt_to_img = (ce([L[0][0], L[1][0]], 0) + ce([L[0][1], L[1][1]], 1)) / 2
    assert loss(img, txt).item() == pytest.approx((img_to_txt + txt_to_img) / 2, rel=1e-6)


def test_clip_scale_is_learnable_and_clamped():
    loss = CLIPLoss(temperature=0.07)
    assert loss.logit_scale.requires_grad and loss.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    img, txt = torch.randn(5, 4), torch.randn(5, 4)
    out = loss(img, txt)
    out.backward()
    assert loss.logit_scale.grad is not None
    big = loss.logits(img, txt, logit_scale=torch.tensor(10.0))  # clamped to 100
    ref = 100 * torch.nn.functional.normalize(img, dim=1) @ torch.nn.functional.normalize(txt, dim=1).T
    torch.testing.assert_close(big, ref)
    with pytest.raises(ValueError):
        loss(img, txt[:4])
