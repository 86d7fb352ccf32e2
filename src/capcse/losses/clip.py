"""Symmetric CLIP InfoNCE (Radford et al., ICML 2021, "Learning Transferable Visual Models From
Natural Language Supervision", Figure 3 pseudo-code), used for CLIPPINGS' image-text pre-training.

For a batch of N matched (image, text) pairs with L2-normalised embeddings ``I_i`` and ``T_j``::

    logits_ij = exp(s) * I_i . T_j                      (s = learnable log inverse temperature)
    L = ( CE(logits, diag) + CE(logits^T, diag) ) / 2

i.e. each image must pick its own caption among the batch's captions and each caption its own image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from capcse.losses.simcse import cosine_logits, fp32


class CLIPLoss(nn.Module):
    """``forward(image_embeds [N,D], text_embeds [N,D]) -> scalar``; pair i is (image i, text i).

    ``temperature`` initialises ``exp(-s)`` (CLIP: 0.07); ``learnable_temperature`` makes ``s`` a
    parameter, clamped so that ``exp(s) <= max_scale`` (CLIP: 100). Pass ``logit_scale`` to
    :meth:`forward` to use a model's own scale (e.g. a Hugging Face ``CLIPModel.logit_scale``).
    """

    def __init__(self, temperature: float = 0.07, learnable_temperature: bool = True, max_scale: float = 100.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        init = torch.tensor(math.log(1.0 / temperature))
        self.logit_scale = nn.Parameter(init) if learnable_temperature else nn.Parameter(init, requires_grad=False)
        self.max_scale = float(max_scale)

    def logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor | None = None) -> torch.Tensor:
        s = self.logit_scale if logit_scale is None else logit_scale
        scale = s.clamp(max=math.log(self.max_scale)).exp()
        return fp32(scale) * cosine_logits(image_embeds, text_embeds, 1.0)  # fp32 (see cosine_logits)

    def forward(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor | None = None) -> torch.Tensor:
        if image_embeds.shape != text_embeds.shape:
            raise ValueError(f"image {tuple(image_embeds.shape)} and text {tuple(text_embeds.shape)} embeddings must pair up")
        logits = self.logits(image_embeds, text_embeds, logit_scale)
        target = torch.arange(logits.size(0), device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
