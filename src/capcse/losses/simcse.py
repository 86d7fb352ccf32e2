"""SimCSE's contrastive objective (Gao, Yao & Chen, EMNLP 2021).

Unsupervised, Eq. (1) — ``h_i`` and ``h_i^+`` are two dropout views of sentence ``i``::

    l_i = -log  exp(sim(h_i, h_i^+) / tau)  /  sum_{j=1..N} exp(sim(h_i, h_j^+) / tau)

Supervised with hard negatives, Eq. (5) — ``h_i^+`` the entailment, ``h_i^-`` the contradiction::

    l_i = -log  exp(sim(h_i, h_i^+) / tau)  /  sum_{j=1..N} ( exp(sim(h_i, h_j^+) / tau) + exp(sim(h_i, h_j^-) / tau) )

``sim`` is cosine similarity, ``tau`` the temperature (0.05 in the paper). The loss is the mean of
``l_i`` over the batch. SimCSE's code adds a *hard-negative weight* ``w`` to the logit of each
anchor's own hard negative (``sim(h_i, h_i^-)/tau + w``; ``w = 0`` by default, the paper's ablation
Table 6 found ``log 1 = 0`` best), i.e. the hard negative counts ``e^w`` times in the denominator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in fp32 when it is fp16/bf16 (fp32 and fp64 inputs are left as they are)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def cosine_logits(anchors: torch.Tensor, candidates: torch.Tensor, temperature: float) -> torch.Tensor:
    """``cos(a_i, c_j) / tau`` for every anchor i and candidate j: shape [N, M], always in fp32 (or fp64).

    The embeddings are cast up and autocast is switched off for the normalisation and the product, as
    SimCSE's ``nn.CosineSimilarity`` runs in fp32 under CUDA autocast: a bf16 product would round each
    cosine to ~3 significant digits and the ``1 / tau`` (20 at tau = 0.05) would magnify that error.
    Every capcse loss computes its similarity matrices through this function."""
    with torch.autocast(device_type=anchors.device.type, enabled=False):
        return F.normalize(fp32(anchors), dim=-1) @ F.normalize(fp32(candidates), dim=-1).T / temperature


class SimCSELoss(nn.Module):
    """InfoNCE over cosine / temperature with in-batch negatives (Eq. 1), plus hard negatives (Eq. 5).

    ``forward(anchors [N,D], positives [M,D], negatives [K,D] | None, offset=0)``: anchor ``i`` is
    paired with positive ``offset + i``; every other positive and every negative is a negative for it.
    ``M`` and ``K`` may exceed ``N`` when candidates are gathered from other devices (``offset`` is
    then this device's first row in the gathered batch); negative ``offset + i`` is anchor i's own hard
    negative, which gets the hard-negative weight.
    """

    def __init__(self, temperature: float = 0.05, hard_negative_weight: float = 0.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.hard_negative_weight = float(hard_negative_weight)

    def logits(self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None,
               offset: int = 0) -> torch.Tensor:
        logits = cosine_logits(anchors, positives, self.temperature)  # [N, M]: sim(h_i, h_j^+) / tau
        if negatives is not None:
            neg = cosine_logits(anchors, negatives, self.temperature)  # [N, K]: sim(h_i, h_j^-) / tau
            if self.hard_negative_weight:
                rows = torch.arange(anchors.size(0), device=anchors.device)
                weight = torch.zeros_like(neg)
                weight[rows, offset + rows] = self.hard_negative_weight
                neg = neg + weight
            logits = torch.cat([logits, neg], dim=1)
        return logits

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None,
                offset: int = 0, reduction: str = "mean") -> torch.Tensor:
        logits = self.logits(anchors, positives, negatives, offset)
        targets = torch.arange(offset, offset + anchors.size(0), device=anchors.device)
        return F.cross_entropy(fp32(logits), targets, reduction=reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, hard_negative_weight={self.hard_negative_weight}"
