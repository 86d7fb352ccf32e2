"""Dropout whose masks are cheap to draw on a CPU — SimCSE's positives are two dropout views, so every
training step draws a dropout mask for every activation the encoder makes.

Why: on a CPU, ``torch.nn.functional.dropout`` draws one Bernoulli sample per element through a
single-threaded generator call (``bernoulli_``: ~6-9 ns per element in an ad-hoc micro-benchmark on
the 2-core development machine). In a SimCSE step of
all-MiniLM-L6-v2 (128 sequences x 16 tokens) that is ~13 % of the step
(``benchmarks/step_profile.py --profile``).
The mask here is the same distribution drawn from fewer generator calls: one 64-bit draw of torch's
default generator (``random_`` over the whole int64 range) gives four independent uniform 16-bit lanes,
and a lane keeps its element when it is below ``round((1 - p) * 2**16)`` — keep probability
``(1 - p)`` to within ``2**-17`` (0.9 -> 0.899994), kept values scaled by ``1 / (1 - p)`` as usual.
Because it draws from torch's default generator, ``torch.manual_seed``, ``fork_rng`` and the RNG
snapshots that GradCache replays (``capcse.train.objective``) govern it exactly as they govern
``nn.Dropout``; the stream itself differs from ``bernoulli_``'s, so the masks differ from stock dropout's
for the same seed.

:func:`use_fast_dropout` swaps a model's ``nn.Dropout`` modules for :class:`FastDropout` and, for
transformers models that take the attention-function interface (BERT, RoBERTa, ...), switches attention
to :func:`fast_dropout_attention`: PyTorch's SDPA (unchanged) whenever dropout is off (evaluation,
inference), and in training the same math SDPA runs on a CPU when it must apply dropout (scores, mask,
softmax, dropout, values) with this mask; softmax runs in float32 (faster than bfloat16 on CPUs for
short rows, and more exact). Nothing is saved differently: the modules hold no parameters and the
attention choice is not written to ``config.json``, so saved models load as before.

On a GPU torch's own dropout is fast (counter-based generator) and fused attention kernels apply
dropout inside; ``train.fast_dropout: auto`` therefore uses this only on CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.integrations.sdpa_attention import sdpa_attention_forward

ATTENTION_NAME = "capcse_fast_dropout"
_INT64_MIN = torch.iinfo(torch.int64).min


def keep_mask(shape: tuple[int, ...] | torch.Size, p: float, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask, each element ``True`` (kept) with probability ``1 - p`` (to within ``2**-17``)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    threshold = round((1.0 - p) * 65536) - 32768
    if threshold > 32767:  # p < 2**-17: every element kept (an int16 lane cannot reach 2**15)
        return torch.ones(shape, dtype=torch.bool, device=device)
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    bits.random_(_INT64_MIN, None, generator=generator)  # the whole int64 range: 64 uniform bits
    lanes = bits.view(torch.int16)[:n].view(shape)      # four uniform lanes in [-2**15, 2**15)
    return lanes < threshold


def _scaled(mask: torch.Tensor, dtype: torch.dtype, scale: float) -> torch.Tensor:
    # bool -> float casts and bool x float products are slow on CPUs; uint8 -> float casts are not
    return mask.view(torch.uint8).to(dtype).mul_(scale)


class _FastDropoutFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        mask = keep_mask(x.shape, p, x.device)
        ctx.save_for_backward(mask)  # one byte per element, as torch's dropout keeps
        ctx.scale = 1.0 / (1.0 - p)
        return x * _scaled(mask, x.dtype, ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * _scaled(mask, grad.dtype, ctx.scale), None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the cheap mask (identity when not training or ``p == 0``)."""
    if not training or p == 0.0:
        return x
    return _FastDropoutFunction.apply(x, p)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` drawing its mask with :func:`keep_mask` (same ``p``, same train/eval behaviour)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            raise ValueError("FastDropout does not support inplace=True")
        return fast_dropout(x, self.p, self.training)


def fast_dropout_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, scaling: float | None = None,
                           dropout: float = 0.0, is_causal: bool | None = None, **kwargs):
    """A transformers attention function (``AttentionInterface``): transformers' own SDPA function
    without dropout, and for anything beyond plain attention (position bias, paged cache, soft-capping,
    grouped key/value heads); otherwise, in training, ``softmax(Q K^T * scaling + mask) -> dropout -> @ V``
    with :func:`fast_dropout`. Takes the masks transformers builds for ``sdpa`` (boolean, ``True`` =
    attend, or additive float) and decides causality as that function does."""
    special = any(kwargs.get(k) is not None for k in ("position_bias", "cache", "softcap", "s_aux", "sinks"))
    grouped = getattr(module, "num_key_value_groups", 1) > 1
    if dropout == 0.0 or not module.training or special or grouped:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=dropout if module.training else 0.0, is_causal=is_causal, **kwargs)
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    q_len, k_len = query.shape[2], key.shape[2]
    if attention_mask is None and is_causal and q_len > 1:
        # transformers leaves the mask out when SDPA's is_causal flag can stand in for it: build it back
        attention_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32)
    weights = torch.nan_to_num(weights, nan=0.0)  # fully masked rows: zeros, as SDPA's safe softmax
    weights = fast_dropout(weights.to(value.dtype), dropout)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, fast_dropout_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def use_fast_dropout(model: nn.Module) -> dict[str, int]:
    """Swap ``model``'s ``nn.Dropout`` modules for :class:`FastDropout` and, where the transformers
    model takes the attention-function interface and uses SDPA or eager attention, switch its attention
    to :func:`fast_dropout_attention`. Returns ``{"modules": swapped, "attention": models switched}``."""
    swapped = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout and not child.inplace:
                setattr(parent, name, FastDropout(child.p).train(child.training))
                swapped += 1
    targets = [sub for sub in model.modules()
               if hasattr(sub, "set_attn_implementation") and getattr(sub, "_supports_attention_backend", False)]
    if targets:
        _register_attention()
    switched = 0
    for sub in targets:  # only models on sdpa/eager (one already switched, e.g. through its parent, is left)
        if getattr(sub.config, "_attn_implementation", None) in ("sdpa", "eager"):
            sub.set_attn_implementation(ATTENTION_NAME)
            switched += 1
    return {"modules": swapped, "attention": switched}
