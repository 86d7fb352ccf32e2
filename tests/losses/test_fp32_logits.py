"""Every loss's similarity / logit matrix is computed in fp32, also under autocast (issue 13 §3).

Under CPU bf16 autocast a plain ``normalize(a) @ normalize(b).T`` runs in bf16 (~3 significant digits);
divided by tau = 0.05 the logits would be off by ~0.1. capcse's losses cast the embeddings up and switch
autocast off for the product, so the logits equal the fp32 ones computed from the same embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from capcse.losses.clip import CLIPLoss
from capcse.losses.dalr import AngularMarginInfoNCE, SoftLabelAlignmentLoss, cosine_matrix
from capcse.losses.grounding import MCSEGroundingLoss
from capcse.losses.simcse import SimCSELoss, cosine_logits
from capcse.losses.supcon import SupConLoss


def embeddings(dtype, seed=0, n=16, d=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g).to(dtype)


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cosine_logits_under_autocast_equal_fp32(dtype):
    a, b = embeddings(dtype, 0), embeddings(dtype, 1)
    reference = F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T / 0.05
    with bf16_autocast():
        got = cosine_logits(a, b, 0.05)
        naive = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / 0.05   # what autocast does to a plain product
    assert got.dtype == torch.float32
    assert (got - reference).abs().max().item() < 1e-6
    # the check has teeth: the plain product under autocast is far off (bf16 cosines times 1/tau)
    assert naive.dtype == torch.bfloat16 and (naive.float() - reference).abs().max().item() > 1e-3


def test_every_loss_logits_equal_fp32_under_autocast():
    a, b, neg = embeddings(torch.float32, 0), embeddings(torch.float32, 1), embeddings(torch.float32, 2)
    labels = torch.arange(16) % 4
    soft = cosine_matrix(b, b)
    makers = {
        "simcse": lambda: SimCSELoss(0.05).logits(a, b, neg),
        "simcse_loss": lambda: SimCSELoss(0.05)(a, b, neg),
        "grounding": lambda: MCSEGroundingLoss(0.05)(torch.stack([a, b]), neg),
        "dalr_logits": lambda: AngularMarginInfoNCE(0.05, 0.18).logits(a, b, soft),
        "dalr_soft_label": lambda: SoftLabelAlignmentLoss(0.0225, 0.5)(a, b, soft, soft),
        "supcon": lambda: SupConLoss(0.1)(a, labels),
        "clip_logits": lambda: CLIPLoss(0.07).logits(a, b),
        "clip": lambda: CLIPLoss(0.07)(a, b),
    }
    for name, make in makers.items():
        reference = make()
        with bf16_autocast():
            got = make()
        assert got.dtype == torch.float32, name
        assert (got - reference).abs().max().item() < 1e-6, name
