"""Supervised contrastive loss (Khosla et al., NeurIPS 2020, "Supervised Contrastive Learning"),
the "L_out" form, Eq. (2), as CLIPPINGS uses it (temperature 0.1) on pooled record embeddings::

    L = sum_{i in I}  -1/|P(i)|  sum_{p in P(i)}  log  exp(z_i . z_p / tau) / sum_{a in A(i)} exp(z_i . z_a / tau)

``z`` are L2-normalised embeddings, ``A(i)`` every other sample of the batch, ``P(i)`` the samples of
``A(i)`` with the label of ``i`` (multi-positive). As in pytorch-metric-learning's ``SupConLoss``
(the implementation CLIPPINGS trained with), the sum over anchors is replaced by the mean over the
anchors that have at least one positive (an anchor with ``P(i)`` empty has no defined term; it still
serves as a negative for the others), and no ``tau / base_tau`` factor is applied. A batch with no
positive pair gives a zero loss that still carries a graph.
"""

from __future__ import annotations

import torch
from torch import nn

from capcse.losses.simcse import cosine_logits


class SupConLoss(nn.Module):
    """``forward(embeddings [N,D], labels [N]) -> scalar`` (Khosla et al. 2020, Eq. 2, L_out)."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(f"need embeddings [N, D] and labels [N], got {tuple(embeddings.shape)} and {tuple(labels.shape)}")
        logits = cosine_logits(embeddings, embeddings, self.temperature)  # z_i . z_j / tau in fp32
        n = logits.size(0)
        self_mask = torch.eye(n, dtype=torch.bool, device=logits.device)
        # log of exp(z_i.z_p/tau) / sum_{a != i} exp(z_i.z_a/tau): the anchor itself leaves A(i)
        log_prob = logits - torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
        positives = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~self_mask
        n_pos = positives.sum(dim=1)
        has_pos = n_pos > 0
        if not bool(has_pos.any()):
            return embeddings.sum() * 0.0
        per_anchor = -(log_prob * positives).sum(dim=1)[has_pos] / n_pos[has_pos]
        return per_anchor.mean()
