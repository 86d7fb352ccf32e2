"""Fused attention for BLIP's vision tower when captioning.

transformers' ``BlipAttention`` (the ViT of every BLIP captioner) computes attention by hand:
``softmax(Q K^T * scale) V`` as separate matmul, scale, softmax and matmul ops over ``577 x 577`` score
matrices per head at 384 px. It does not take transformers' attention-function interface, so
``attn_implementation="sdpa"`` cannot reach it. On a CPU with bf16 weights those separate ops took
~137 ms per image against ~124 ms for the fused kernel (BLIP-base, batch 8:
``benchmarks/caption_throughput.py --quick --profile`` with ``--attention eager`` / ``sdpa``), and they
materialise every ``577 x 577`` score matrix. :func:`use_sdpa_vision_attention` gives the
loaded model's ``BlipAttention`` modules a forward that computes the same equation with
``torch.nn.functional.scaled_dot_product_attention`` (PyTorch's fused kernels: flash attention on CPU
and GPU), with the same weights (``qkv``, ``projection``) and the same scale. Outputs equal the
original's to float rounding (tested); the attention probabilities are not materialised, so the
module returns ``None`` for them (captioning never asks for them).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _sdpa_forward(self, hidden_states: torch.Tensor, **kwargs):
    bsz, n, dim = hidden_states.shape
    qkv = self.qkv(hidden_states).reshape(bsz, n, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
    p = self.dropout.p if self.training else 0.0
    context = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p, scale=self.scale)
    return self.projection(context.transpose(1, 2).reshape(bsz, n, dim)), None


def use_sdpa_vision_attention(model: torch.nn.Module) -> int:
    """Give every ``BlipAttention`` in ``model`` the SDPA forward; returns how many were changed."""
    try:
        from transformers.models.blip.modeling_blip import BlipAttention
    except ImportError:  # pragma: no cover - transformers without BLIP
        return 0
    changed = 0
    for module in model.modules():
        if type(module) is BlipAttention:
            module.forward = _sdpa_forward.__get__(module)
            changed += 1
    return changed
