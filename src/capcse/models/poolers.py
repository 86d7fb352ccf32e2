"""Sentence poolers, named exactly as SimCSE names them (Gao et al., 2021, §6.3 and evaluation.py).

| name                | sentence embedding                                               | AutoModel equivalent          |
|---------------------|------------------------------------------------------------------|-------------------------------|
| ``cls``             | [CLS] through the MLP head (BERT/RoBERTa pooler: dense + tanh)   | ``outputs.pooler_output``     |
| ``cls_before_pooler`` | [CLS] of the last layer, no MLP                                | ``last_hidden_state[:, 0]``   |
| ``avg``             | masked mean of the last layer's token states                     | masked mean of last layer     |
| ``avg_top2``        | masked mean of the average of the last two layers                | ``hidden_states[-2], [-1]``   |
| ``avg_first_last``  | masked mean of the average of the first and the last layer       | ``hidden_states[1], [-1]``    |
| ``avg_first_last_paper`` | the same with the static embeddings in place of the first layer | ``hidden_states[0], [-1]`` |
| ``mean``            | sentence-transformers' mean pooling (same formula as ``avg``)    | masked mean of last layer     |

Which layers ``avg_first_last`` averages: ``hidden_states`` of a Hugging Face model has ``L + 1``
entries — index 0 is the embedding-layer output (static word + position + type embeddings, LayerNorm),
1 … L the transformer layers.

* ``avg_first_last`` is SimCSE's *current* code: ``evaluation.py`` and ``simcse/models.py`` both average
  ``hidden_states[1]`` (the first transformer layer) and ``hidden_states[-1]`` since commit 206d7ae
  ("fix first-last avg", January 2022).
* ``avg_first_last_paper`` is what produced the *paper's* "first-last avg." numbers (e.g. Table 1's
  BERT-base first-last avg. rows): before that commit both files used ``hidden_states[0]``, the static
  embeddings. SimCSE's README says so ("in the paper we reported the average of last layer and the static
  word embedding; we fixed this to be last and first layer average and it led to better performance").
  Use it to reproduce the paper's baseline rows; use ``avg_first_last`` to match the released code.

In a sentence-transformers pipeline these poolers are modules after the ``Transformer`` module:
``cls`` makes the Transformer module itself emit ``pooler_output`` as the sentence embedding (plain
sentence-transformers can load that), ``cls_before_pooler``/``avg``/``mean`` are the stock ``Pooling``
module, and ``avg_top2``/``avg_first_last`` are the stock ``WeightedLayerPooling`` (weight 1 on the
chosen layers, 0 elsewhere) + mean ``Pooling`` (:func:`layer_average_modules`). Every saved capcse
model therefore loads in plain sentence-transformers, without capcse installed.
"""

from __future__ import annotations

import torch

POOLERS = ("cls", "cls_before_pooler", "avg", "avg_top2", "avg_first_last", "avg_first_last_paper", "mean")

# Which entries of `hidden_states` each layer-averaging pooler uses (see the module docstring).
LAYER_POOLERS: dict[str, tuple[int, ...]] = {"avg_top2": (-2, -1), "avg_first_last": (1, -1),
                                             "avg_first_last_paper": (0, -1)}


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real (mask = 1) tokens: ``sum_t m_t h_t / sum_t m_t``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def pool(name: str, attention_mask: torch.Tensor, last_hidden_state: torch.Tensor,
         pooler_output: torch.Tensor | None = None,
         hidden_states: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """Pool raw Hugging Face model outputs by pooler name (the reference implementation of the table)."""
    if name == "cls":
        if pooler_output is None:
            raise ValueError("pooler 'cls' needs the model's pooler_output (dense + tanh over [CLS]); "
                             "this model has no pooler — use 'cls_before_pooler' or 'avg'")
        return pooler_output
    if name == "cls_before_pooler":
        return last_hidden_state[:, 0]
    if name in ("avg", "mean"):
        return masked_mean(last_hidden_state, attention_mask)
    if name in LAYER_POOLERS:
        if hidden_states is None:
            raise ValueError(f"pooler {name!r} needs hidden_states (output_hidden_states=True)")
        layers = [hidden_states[i] for i in LAYER_POOLERS[name]]
        return masked_mean(sum(layers) / len(layers), attention_mask)
    raise ValueError(f"unknown pooler {name!r}; choose one of {', '.join(POOLERS)}")


def layer_average_modules(pooler: str, embedding_dimension: int, num_hidden_layers: int) -> list:
    """Stock sentence-transformers modules computing ``avg_top2`` / ``avg_first_last``:
    ``WeightedLayerPooling`` (a weighted mean over ``hidden_states[layer_start:]``, with weight 1 on the
    pooler's layers and 0 elsewhere) followed by mean ``Pooling``. Stock modules, so a saved model loads
    in plain sentence-transformers (no custom code, no ``trust_remote_code``)."""
    from sentence_transformers.sentence_transformer.modules import Pooling, WeightedLayerPooling

    n_states = num_hidden_layers + 1  # embeddings + every transformer layer
    chosen = sorted({i % n_states for i in LAYER_POOLERS[pooler]})
    start = chosen[0]
    weights = torch.zeros(n_states - start)
    weights[[i - start for i in chosen]] = 1.0
    weighted = WeightedLayerPooling(embedding_dimension, num_hidden_layers=num_hidden_layers, layer_start=start,
                                    layer_weights=torch.nn.Parameter(weights, requires_grad=False))
    return [weighted, Pooling(embedding_dimension, "mean")]
