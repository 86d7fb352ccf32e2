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
import logging
from typing import Iterator

import torch
from torch import nn

from capcse.models.encoder import set_pooler

logger = logging.getLogger(__name__)


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
    """SimCSE's auxiliary masked-language-model head (SimCSE §B / ``do_mlm``): dense + activation +
    LayerNorm + decoder to the vocabulary, i.e. ``BertLMPredictionHead`` / ``RobertaLMHead``. Trained
    alongside the encoder, never saved with the model. Its decoder is its own weight, not tied to the input
    embeddings, as in SimCSE (``BertForCL``/``RobertaForCL`` define no output embeddings to tie).
    Where it starts: :func:`build_mlm_head`."""

    def __init__(self, hidden_size: int, vocab_size: int, layer_norm_eps: float = 1e-12, activation: str = "gelu"):
        super().__init__()
        from transformers.activations import ACT2FN

        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = ACT2FN[activation] if activation != "gelu" else nn.GELU()
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.act(self.dense(hidden))))


#: Where a checkpoint keeps its MLM head: prefix, then checkpoint key -> MLMHead key. ``bert``:
#: ``BertForMaskedLM``/``BertForPreTraining`` (``cls.predictions.*``; TF-converted files say gamma/beta);
#: ``roberta``: ``RobertaForMaskedLM``/``XLMRobertaForMaskedLM`` (``lm_head.*``).
MLM_HEAD_LAYOUTS: dict[str, tuple[str, dict[str, str]]] = {
    "bert": ("cls.predictions.", {
        "transform.dense.weight": "dense.weight", "transform.dense.bias": "dense.bias",
        "transform.LayerNorm.weight": "norm.weight", "transform.LayerNorm.bias": "norm.bias",
        "transform.LayerNorm.gamma": "norm.weight", "transform.LayerNorm.beta": "norm.bias",
        "decoder.weight": "decoder.weight", "decoder.bias": "decoder.bias", "bias": "decoder.bias"}),
    "roberta": ("lm_head.", {
        "dense.weight": "dense.weight", "dense.bias": "dense.bias",
        "layer_norm.weight": "norm.weight", "layer_norm.bias": "norm.bias",
        "decoder.weight": "decoder.weight", "decoder.bias": "decoder.bias", "bias": "decoder.bias"}),
}

#: ``loss.mlm_head_init``: which layouts each mode loads. ``simcse`` is what SimCSE's released code ends up
#: with: ``RobertaForCL.lm_head`` matches the checkpoint's ``lm_head.*`` and loads it, while
#: ``BertForCL.lm_head`` does not match ``cls.predictions.*``, so a BERT head starts fresh (measured in
#: docs/training.md; the authors confirm it in princeton-nlp/SimCSE#179).
MLM_HEAD_INIT = {"simcse": ("roberta",), "pretrained": ("bert", "roberta"), "fresh": ()}


def _weight_files(source: str) -> list[str]:
    """The checkpoint files of ``source`` (a folder or hub id): safetensors first, then ``.bin``;
    sharded checkpoints through their index. Empty when there are none (or offline and not cached)."""
    import json

    from transformers.utils import cached_file

    def find(name: str) -> str | None:
        try:
            return cached_file(source, name, _raise_exceptions_for_missing_entries=False,
                               _raise_exceptions_for_connection_errors=False)
        except (OSError, ValueError):
            return None

    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        path = find(single)
        if path:
            return [path]
        path = find(index)
        if path:
            with open(path, encoding="utf-8") as f:
                shards = sorted(set(json.load(f).get("weight_map", {}).values()))
            found = [find(s) for s in shards]
            return [f for f in found if f]
    return []


def checkpoint_tensors(source: str, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Every tensor of ``source``'s checkpoint whose key starts with one of ``prefixes``."""
    out: dict[str, torch.Tensor] = {}
    for path in _weight_files(source):
        if path.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(path, framework="pt") as f:
                for key in f.keys():
                    if key.startswith(prefixes):
                        out[key] = f.get_tensor(key)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            out.update({k: v for k, v in state.items() if k.startswith(prefixes)})
    return out


def _fresh(head: MLMHead, std: float) -> None:
    """SimCSE's fresh head: BERT's initialisation (``_init_weights``): linear weights N(0, std), zero
    biases, LayerNorm 1 / 0."""
    reinit_linear(head.dense, std)
    reinit_linear(head.decoder, std)
    with torch.no_grad():
        head.norm.weight.fill_(1.0)
        head.norm.bias.zero_()


def build_mlm_head(hf_model, source: str | None, init: str = "simcse") -> tuple[MLMHead, str]:
    """SimCSE's MLM head for ``hf_model`` (a transformers encoder) and a sentence saying where it started.

    ``init`` (``loss.mlm_head_init``): ``pretrained`` loads the head of ``source``'s checkpoint (BERT's
    ``cls.predictions.*`` or RoBERTa's ``lm_head.*``); ``simcse`` loads only what SimCSE's code loads
    (``lm_head.*``; a BERT head starts fresh there); ``fresh`` never loads. When nothing is loaded the head
    gets BERT's initialisation (:func:`_fresh`), with a warning when ``pretrained`` found no head. A
    checkpoint saved with tied decoder weights (safetensors drops the duplicate) gets a *copy* of the input
    embeddings, the value its decoder had; the copy is then trained on its own (untied, as in SimCSE)."""
    if init not in MLM_HEAD_INIT:
        raise ValueError(f"mlm_head_init must be one of {', '.join(MLM_HEAD_INIT)}, got {init!r}")
    cfg = hf_model.config
    # RobertaLMHead applies gelu; BertLMPredictionHead the config's hidden_act
    roberta_like = cfg.model_type in ("roberta", "xlm-roberta", "camembert")
    activation = "gelu" if roberta_like else getattr(cfg, "hidden_act", "gelu")
    head = MLMHead(cfg.hidden_size, cfg.vocab_size, getattr(cfg, "layer_norm_eps", 1e-12), activation)
    _fresh(head, getattr(cfg, "initializer_range", 0.02))
    layouts = MLM_HEAD_INIT[init]
    tensors = checkpoint_tensors(source, tuple(MLM_HEAD_LAYOUTS[n][0] for n in MLM_HEAD_LAYOUTS)) if (
        source and layouts) else {}
    for name in layouts:
        prefix, mapping = MLM_HEAD_LAYOUTS[name]
        state = {mapping[k[len(prefix):]]: v for k, v in tensors.items()
                 if k.startswith(prefix) and k[len(prefix):] in mapping}
        if not {"dense.weight", "norm.weight"} <= set(state):
            continue
        note = f"loaded from {source} ({prefix}*)"
        if "decoder.weight" not in state:
            if not getattr(cfg, "tie_word_embeddings", True):
                continue
            state["decoder.weight"] = hf_model.get_input_embeddings().weight.detach().clone()
            note += "; decoder = a copy of the input embeddings (tied in the checkpoint)"
        missing, unexpected = head.load_state_dict(state, strict=False)
        if missing:
            note += f"; fresh: {', '.join(missing)}"
        return head, note
    present = sorted({n for n, (p, _) in MLM_HEAD_LAYOUTS.items() if any(k.startswith(p) for k in tensors)})
    if init == "pretrained":
        logger.warning("MLM head: %s has no MLM head (%s): a fresh head is trained from scratch", source,
                       " or ".join(MLM_HEAD_LAYOUTS[n][0] + "*" for n in MLM_HEAD_LAYOUTS))
        return head, "fresh (the checkpoint has none)"
    if init == "simcse" and present:
        return head, (f"fresh, as SimCSE's code leaves it (the checkpoint's {MLM_HEAD_LAYOUTS[present[0]][0]}* "
                      "does not match its lm_head; loss.mlm_head_init=pretrained loads it)")
    return head, "fresh"
