"""Train-only heads and the switch between a model's training and inference forms.

SimCSE's ``cls`` pooler puts an MLP (dense + tanh) over [CLS]. capcse uses the encoder's own pooler
module as that MLP when it has one (BERT/RoBERTa's pooler *is* dense + tanh over [CLS]); with
``mlp_init='fresh'`` it is re-initialised first, as SimCSE trains a new MLP. Because the trained MLP
lives in the transformer's pooler weights, every loading path sees it:

* ``SentenceTransformer(path)`` gives the recipe's sentence embedding;
* ``AutoModel.from_pretrained(path)(...).pooler_output`` is MLP([CLS]) — the SimCSE convention
  (SimCSE's own checkpoint conversion renames ``mlp`` to ``pooler``);
* with ``mlp_only_train`` the sentence embedding at inference is [CLS] *before* the MLP
  (``last_hidden_state[:, 0]``), exactly as SimCSE evaluates its unsupervised models, while
  ``pooler_output`` still holds MLP([CLS]).

Encoders without a pooler (e.g. DistilBERT) get a sentence-transformers ``Dense`` (tanh) module after
[CLS] pooling instead; it is dropped at save time when ``mlp_only_train``, kept otherwise (then only
the sentence-transformers path includes it — ``AutoModel`` has no place for it).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from capcse.models.encoder import set_pooler


def _hf(model):
    return model[0].auto_model


def has_mlp_pooler(model) -> bool:
    pooler = getattr(_hf(model), "pooler", None)
    return pooler is not None and isinstance(getattr(pooler, "dense", None), nn.Linear)


def reinit_linear(layer: nn.Linear, std: float) -> None:
    """BERT's initialisation (normal(0, initializer_range), zero bias) — what SimCSE's fresh MLP gets."""
    with torch.no_grad():
        layer.weight.normal_(mean=0.0, std=std)
        if layer.bias is not None:
            layer.bias.zero_()


def apply_training_form(model, pooler: str, mlp_init: str = "fresh", seed: int | None = None) -> None:
    """Put the pooler (and, for ``cls``, the MLP head) used during training onto ``model``."""
    if pooler != "cls":
        set_pooler(model, pooler)
        return
    if mlp_init not in ("fresh", "pretrained"):
        raise ValueError(f"mlp_init must be 'fresh' or 'pretrained', got {mlp_init!r}")
    hf = _hf(model)
    generator_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        if has_mlp_pooler(model):
            set_pooler(model, "cls")
            if mlp_init == "fresh":
                reinit_linear(hf.pooler.dense, getattr(hf.config, "initializer_range", 0.02))
        else:
            from sentence_transformers.base.modules.dense import Dense

            set_pooler(model, "cls_before_pooler")
            dim = hf.config.hidden_size
            dense = Dense(dim, dim, activation_function=nn.Tanh())
            reinit_linear(dense.linear, getattr(hf.config, "initializer_range", 0.02))
            model.append(dense)
    finally:
        if seed is not None:
            torch.random.set_rng_state(generator_state)


def apply_inference_form(model, pooler: str, mlp_only_train: bool) -> None:
    """Turn a training-form model into what is saved and evaluated (drops a train-only MLP)."""
    if pooler != "cls" or not mlp_only_train:
        return
    if has_mlp_pooler(model):
        set_pooler(model, "cls_before_pooler")
    else:
        last = list(model._modules)[-1]
        if type(model._modules[last]).__name__ == "Dense":
            del model._modules[last]


@contextlib.contextmanager
def inference_view(model, pooler: str, mlp_only_train: bool) -> Iterator:
    """Temporarily switch ``model`` to its inference form (e.g. for dev evaluation during training);
    the very same module objects are put back afterwards."""
    if pooler != "cls" or not mlp_only_train:
        yield model
        return
    transformer = model[0]
    saved_modules = list(model._modules.items())
    saved = (dict(transformer.modality_config), transformer.module_output_name,
             transformer.auto_model.config.output_hidden_states)
    apply_inference_form(model, pooler, mlp_only_train)
    try:
        yield model
    finally:
        model._modules.clear()
        model._modules.update(saved_modules)
        transformer.modality_config, transformer.module_output_name = saved[0], saved[1]
        transformer.auto_model.config.output_hidden_states = saved[2]


class MLMHead(nn.Module):
    """SimCSE's auxiliary masked-language-model head (dense + GELU + LayerNorm + decoder to the
    vocabulary), a new module trained alongside (SimCSE §B / ``do_mlm``); never saved with the model."""

    def __init__(self, hidden_size: int, vocab_size: int, layer_norm_eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.act(self.dense(hidden))))
