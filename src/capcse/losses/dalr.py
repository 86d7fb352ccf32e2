"""DALR's cross-modal alignment: angular-margin InfoNCE with soft labels, false-negative masking, and
soft-label distribution alignment.

DALR (He et al., "DALR: Dual-level Alignment Learning for Multimodal Sentence Representation
Learning", ACL Findings 2025, §3.2 cross-modal alignment; github.com/Hekang001/DALR
src/model_modified.py) builds on KDMCSE (Nguyen et al., "KDMCSE: Knowledge Distillation Multimodal
Sentence Embeddings with Adaptive Angular margin Contrastive Learning", NAACL 2024, §3 "AdapACSE";
github.com/duyngtr16061999/KDMCSE ``ArcSimilarity``):

* **Angular margin with soft labels** (:func:`angular_margin_cosine`, KDMCSE's ``calculate_arccos2``):
  with ``theta_ij = arccos cos(a_i, c_j)``, every *negative* (j != i) angle is reduced by a margin
  ``m_ij = m (1 - s_ij)`` before the softmax — negatives look closer, so the positive must win by an
  angular margin — where ``s_ij`` in [0, 1] is a soft label saying how alike items i and j are
  (DALR/KDMCSE: the cosine of the two *images*' frozen features). Alike pairs get almost no margin
  (they may be false negatives), unrelated pairs the full margin ``m``::

      l_i = -log  exp(cos theta_ii / tau)  /  ( exp(cos theta_ii / tau) + sum_{j != i} exp(cos(theta_ij - m_ij) / tau) )

  Without soft labels ``m_ij = m`` (DALR uses this on the text–text SimCSE term, ``margin1``).
* **False-negative masking** (:func:`false_negative_mask`, KDMCSE's ``--using_threshhold``):
  off-diagonal pairs whose similarity exceeds a threshold (KDMCSE: CLIP image–caption score >
  ``score_base``), or that share an item id, are removed from the denominator.
* **Soft-label alignment** (:class:`SoftLabelAlignmentLoss`, DALR's ``KLContrastiveSimLoss`` pair):
  the text→image similarity distribution of caption i is matched (KL) to the teacher text–text
  similarity distribution of caption i, and the image→text distribution of image i to the image–image
  similarity distribution of image i; the two are averaged.

Differences from the released code (documented in docs/multimodal.md): the reduced angle is clamped at
0 (``max(theta - m_ij, 0)``; KDMCSE leaves angles below ``m`` unchanged, which makes the logit jump
at ``theta = m``); soft labels are clamped to [0, 1] (a negative cosine would give a margin > m); the
soft-label alignment compares text and images in the grounding space (DALR's code compares the
768-d text embedding with raw 768-d CLIP image features, which only works because the two widths
coincide); all weights are configuration (DALR's train_mix.py hard-codes ``0.1 * cross + 0.2 * intra``
and ignores its ``--lbd`` flag).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from capcse.losses.grounding import masked_cross_entropy, same_item_mask
from capcse.losses.ranking import DistributionAlignmentLoss
from capcse.losses.simcse import cosine_logits

_EPS = 1e-6


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``cos(a_i, b_j)`` for all i, j: [N, M]."""
    return cosine_logits(a, b, 1.0)


def angular_margin_cosine(cos: torch.Tensor, margin: float, soft_labels: torch.Tensor | None = None) -> torch.Tensor:
    """``cos(max(theta_ij - m_ij, 0))`` for negatives (j != i), ``cos theta_ii`` unchanged for positives.

    ``m_ij = margin * (1 - clamp(s_ij, 0, 1))`` with soft labels ``s`` [N, M], else ``margin``.
    """
    if margin == 0:
        return cos
    n, m = cos.shape
    negatives = ~torch.eye(n, m, dtype=torch.bool, device=cos.device)
    if soft_labels is not None:
        if soft_labels.shape != cos.shape:
            raise ValueError(f"soft labels {tuple(soft_labels.shape)} do not match similarities {tuple(cos.shape)}")
        margins = margin * (1.0 - soft_labels.detach().to(cos.dtype).clamp(0.0, 1.0))
    else:
        margins = torch.full_like(cos, float(margin))
    theta = torch.acos(cos.clamp(-1.0 + _EPS, 1.0 - _EPS))
    shifted = torch.cos((theta - margins).clamp(min=0.0))
    return torch.where(negatives, shifted, cos)


def false_negative_mask(similarity: torch.Tensor | None = None, threshold: float | None = None,
                        ids: Sequence | torch.Tensor | None = None) -> torch.Tensor | None:
    """[N, N] bool of off-diagonal pairs to drop as likely false negatives: ``similarity > threshold``
    (when both are given) or the same item id (when ``ids`` is given). ``None`` when nothing applies."""
    mask = None
    if similarity is not None and threshold is not None:
        n = similarity.size(0)
        mask = (similarity > threshold) & ~torch.eye(n, similarity.size(1), dtype=torch.bool, device=similarity.device)
    if ids is not None:
        dup = same_item_mask(ids, device=similarity.device if similarity is not None else None)
        mask = dup if mask is None else mask | dup
    return mask


class AngularMarginInfoNCE(nn.Module):
    """InfoNCE over angular-margin cosines (KDMCSE AdapACSE / DALR cross-modal term; see the module
    docstring). ``forward(anchors [N,D], candidates [N,D], soft_labels=None, ignore=None)``: anchor i's
    positive is candidate i. ``margin = 0`` and no mask give plain InfoNCE (SimCSE Eq. 1 / MCSE
    ``l^VS``). Anchors may be [V, N, D] (several dropout views; the loss is averaged over views)."""

    def __init__(self, temperature: float = 0.05, margin: float = 0.18):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 <= margin < torch.pi:
            raise ValueError(f"margin must be in [0, pi), got {margin}")
        self.temperature = float(temperature)
        self.margin = float(margin)

    def logits(self, anchors: torch.Tensor, candidates: torch.Tensor,
               soft_labels: torch.Tensor | None = None) -> torch.Tensor:
        return angular_margin_cosine(cosine_matrix(anchors, candidates), self.margin, soft_labels) / self.temperature

    def forward(self, anchors: torch.Tensor, candidates: torch.Tensor, soft_labels: torch.Tensor | None = None,
                ignore: torch.Tensor | None = None) -> torch.Tensor:
        views = anchors.unsqueeze(0) if anchors.dim() == 2 else anchors
        losses = [masked_cross_entropy(self.logits(v, candidates, soft_labels), ignore) for v in views]
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, margin={self.margin}"


class SoftLabelAlignmentLoss(nn.Module):
    """DALR's soft-label cross-modal alignment (§3.2)::

        L = ( KL(softmax(S_TT / tau_t) || softmax(S_TI / tau_s)) + KL(softmax(S_II / tau_t) || softmax(S_TI^T / tau_s)) ) / 2

    ``forward(text [N,P], images [N,P], text_targets [N,N], image_targets [N,N])``: ``S_TI`` are the
    caption–image cosines in the grounding space, ``text_targets`` the teacher's caption–caption
    cosines, ``image_targets`` the frozen image–image cosines. Either target may be ``None`` (that
    direction is then left out). ``margin``: the off-diagonal angles of ``S_TI`` are reduced by it
    (:func:`angular_margin_cosine`), as DALR computes ``S_TI`` with its text ``ArcSimilarity``
    (``margin1``)."""

    def __init__(self, student_temperature: float = 0.0225, target_temperature: float = 0.5, margin: float = 0.0):
        super().__init__()
        if not 0 <= margin < torch.pi:
            raise ValueError(f"margin must be in [0, pi), got {margin}")
        self.kl = DistributionAlignmentLoss(student_temperature, target_temperature)
        self.margin = float(margin)

    def forward(self, text: torch.Tensor, images: torch.Tensor, text_targets: torch.Tensor | None,
                image_targets: torch.Tensor | None) -> torch.Tensor:
        sims = angular_margin_cosine(cosine_matrix(text, images), self.margin)  # [N captions, N images]
        terms = []
        if text_targets is not None:
            terms.append(self.kl(sims, text_targets))
        if image_targets is not None:
            terms.append(self.kl(sims.T, image_targets))
        if not terms:
            raise ValueError("soft-label alignment needs text_targets or image_targets")
        return torch.stack(terms).mean()
