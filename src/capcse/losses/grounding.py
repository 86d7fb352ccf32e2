"""MCSE's image grounding objective (Zhang et al., "MCSE: Multimodal Contrastive Learning of Sentence
Embeddings", NAACL 2022, §3 "multimodal contrastive objective"; github.com/uds-lsv/MCSE src/model.py).

A caption's sentence representation ``h_i`` and its image's frozen visual feature ``v_i`` are projected
into a shared grounding space by two heads, ``g(h) = normalize(tanh(W_t h))`` and
``g'(v) = normalize(tanh(W_v v))`` (:class:`capcse.models.multimodal.ProjectionHead`). The paired image
is the positive, every other image in the batch a negative::

    l_i^VS = -log  exp(sim(g(h_i), g'(v_i)) / tau')  /  sum_{j=1..N} exp(sim(g(h_i), g'(v_j)) / tau')

computed for *both* dropout views of the caption and averaged (MCSE: ``(CE(p1, v) + CE(p2, v)) / 2``).
The full MCSE loss on an image–caption batch is ``l^S + lambda * l^VS`` (SimCSE's ``l^S``,
:class:`capcse.losses.simcse.SimCSELoss`); text-only batches use ``l^S`` alone. Paper values:
``tau' = 0.05``, ``lambda = 0.01`` (run_wiki_flickr.sh), grounding dimension 256.

Extension: when several captions of the same image share a batch, the other copies of a caption's own
image are false negatives; pass ``ignore`` (e.g. :func:`same_item_mask` of the image ids) to drop those
pairs from the denominator. MCSE itself samples one caption per image, so it never has duplicates.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from capcse.losses.simcse import cosine_logits, fp32


def same_item_mask(ids: Sequence | torch.Tensor, device=None) -> torch.Tensor:
    """[N, N] bool: True where ``ids[i] == ids[j]`` and ``i != j`` (a duplicate of the positive)."""
    ids_t = ids if isinstance(ids, torch.Tensor) else torch.as_tensor(list(ids))
    ids_t = ids_t.to(device) if device is not None else ids_t
    same = ids_t[:, None] == ids_t[None, :]
    return same & ~torch.eye(len(ids_t), dtype=torch.bool, device=same.device)


def masked_cross_entropy(logits: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Cross entropy with target ``i`` for row ``i``; entries flagged in ``ignore`` leave the
    denominator (the diagonal, the positive, is never removed)."""
    logits = fp32(logits)
    n = logits.size(0)
    if ignore is not None:
        if ignore.shape != logits.shape:
            raise ValueError(f"ignore mask {tuple(ignore.shape)} does not match logits {tuple(logits.shape)}")
        ignore = ignore & ~torch.eye(n, logits.size(1), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(ignore, float("-inf"))
    return F.cross_entropy(logits, torch.arange(n, device=logits.device))


class MCSEGroundingLoss(nn.Module):
    """``l^VS`` averaged over the caption's dropout views (see the module docstring).

    ``forward(text, images, ignore=None)``: ``text`` is [N, P] (one view) or [V, N, P] (V views) of
    grounding-space caption embeddings, ``images`` [N, P] grounding-space image embeddings of the
    paired images (row i belongs to caption i), ``ignore`` an optional [N, N] bool mask of pairs to
    leave out of the denominator.
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, text: torch.Tensor, images: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
        views = text.unsqueeze(0) if text.dim() == 2 else text
        if views.size(1) != images.size(0):
            raise ValueError(f"{views.size(1)} captions but {images.size(0)} images")
        losses = [masked_cross_entropy(cosine_logits(view, images, self.temperature), ignore) for view in views]
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
