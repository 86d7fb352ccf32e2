"""The model card (README.md) written into a trained model's folder: Hugging Face YAML front matter
(``library_name``, ``tags``, ``base_model``, ``datasets``, ``metrics``), how to load it, how it was
trained, its inference length and its scores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from capcse import __version__
from capcse.io import atomic_write_text

LOADING = {
    "cls": ("MLP([CLS]) — the encoder's pooler (dense + tanh) trained as SimCSE's MLP head",
            "`outputs.pooler_output`"),
    "cls_mlp_only_train": ("[CLS] of the last layer, *before* the MLP (the MLP was used in training only)",
                           "`outputs.last_hidden_state[:, 0]` (`pooler_output` is MLP([CLS]), the trained "
                           "training-time head, SimCSE's convention)"),
    "cls_dense": ("MLP([CLS]) — a sentence-transformers Dense (tanh) module after [CLS] pooling (this encoder has "
                  "no pooler to hold SimCSE's MLP)",
                  "`outputs.last_hidden_state[:, 0]` is [CLS] *before* the MLP; the MLP is the folder's `2_Dense` "
                  "module, which only sentence-transformers applies"),
    "cls_before_pooler": ("[CLS] of the last layer", "`outputs.last_hidden_state[:, 0]`"),
    "avg": ("mean of the last layer's token states over the attention mask",
            "masked mean of `outputs.last_hidden_state`"),
    "mean": ("mean of the last layer's token states over the attention mask",
             "masked mean of `outputs.last_hidden_state`"),
    "avg_top2": ("masked mean of the average of the last two layers",
                 "masked mean of `(hidden_states[-2] + hidden_states[-1]) / 2`"),
    "avg_first_last": ("masked mean of the average of the first transformer layer and the last layer",
                       "masked mean of `(hidden_states[1] + hidden_states[-1]) / 2`"),
    "avg_first_last_paper": ("masked mean of the average of the static embeddings and the last layer (the SimCSE "
                             "paper's first-last avg.)",
                             "masked mean of `(hidden_states[0] + hidden_states[-1]) / 2`"),
}


_HF_DATASET_URL = re.compile(r"https://huggingface\.co/datasets/([\w.-]+/[\w.-]+)/")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def hub_model_id(name: str) -> str | None:
    """The Hugging Face hub id of a base model name (a capcse alias -> its hub id); None for a local path."""
    from capcse.models.registry import ALIASES

    if name in ALIASES:
        return ALIASES[name].hub_id
    if Path(name).expanduser().exists() or not _HUB_ID.match(name):
        return None
    return name


def hub_dataset_ids(train: str) -> list[str]:
    """Hub dataset ids of ``data.train``: ``hf:<name>[:...]`` -> name; a capcse registry name -> the hub
    dataset its files are downloaded from (wiki1m -> princeton-nlp/datasets-for-simcse); else none."""
    if train.startswith("hf:"):
        name = train[3:].split(":", 1)[0]
        return [name] if _HUB_ID.match(name) and not Path(name).exists() else []
    from capcse.data.registry import REGISTRY

    spec = REGISTRY.get(train)
    urls = [u for u in getattr(spec, "origin", ()) or () if isinstance(u, str)]
    return sorted({m.group(1) for u in urls if (m := _HF_DATASET_URL.match(u))})


def front_matter(recipe: Mapping[str, Any], evaluated: bool) -> str:
    """The YAML block the Hugging Face hub reads (model-card metadata)."""
    meta: dict[str, Any] = {"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity",
                            "tags": ["sentence-transformers", "sentence-similarity", "feature-extraction",
                                     "capcse", recipe["loss"]["name"]]}
    base = hub_model_id(str(recipe["model"]["name"]))
    if base:
        meta["base_model"] = base
    datasets = hub_dataset_ids(str(recipe["data"]["train"]))
    if datasets:
        meta["datasets"] = datasets
    if evaluated:
        meta["metrics"] = ["spearman_cosine"]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---"


def _table(rows: Mapping[str, float]) -> str:
    if not rows:
        return "_not evaluated_\n"
    head = "| " + " | ".join(rows) + " |\n| " + " | ".join("---:" for _ in rows) + " |\n"
    return head + "| " + " | ".join(f"{v:.2f}" for v in rows.values()) + " |\n"


def write_model_card(folder: str | Path, *, recipe: Mapping[str, Any], steps: int, train_examples: int,
                     best_dev: Mapping[str, Any] | None = None, test_table: Mapping[str, float] | None = None,
                     dev_history: list[Mapping[str, Any]] | None = None,
                     correlation_tables: Mapping[str, Mapping[str, float]] | None = None, extra: str = "",
                     mlp_in_pooler: bool = True, max_seq_length: int | None = None,
                     best_loaded: bool = False) -> Path:
    """Write README.md into ``folder``. ``mlp_in_pooler``: the encoder's own pooler holds SimCSE's MLP
    (BERT, RoBERTa); False for encoders without one (DistilBERT), whose MLP is a Dense module.
    ``max_seq_length``: the saved model's inference length; ``best_loaded``: the saved weights are those
    of the best dev step (``best_dev``), not of the last step."""
    model = recipe["model"]
    key = "cls_mlp_only_train" if model["pooler"] == "cls" and model.get("mlp_only_train") else model["pooler"]
    if key == "cls" and not mlp_in_pooler:
        key = "cls_dense"
    what, automodel = LOADING.get(key, (model["pooler"], "see capcse.models.poolers"))
    evaluated = bool(test_table or best_dev)
    lines = [
        front_matter(recipe, evaluated),
        "",
        f"# {recipe['name']}",
        "",
        f"Trained with capcse {__version__}: {recipe.get('description') or 'contrastive sentence embeddings'}.",
        f"Reference: {recipe.get('reference') or '-'}",
        "",
        "## Use",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "model = SentenceTransformer(PATH)          # the sentence embedding below",
        "emb = model.encode(['A sentence.'])",
        "```",
        "",
        f"* Sentence embedding: {what}.",
        f"* With `transformers.AutoModel.from_pretrained(PATH)`: {automodel}.",
        "* capcse: `capcse.models.load_encoder(PATH)` (same embedding as sentence-transformers).",
        f"* Inference length: {_length_sentence(max_seq_length)}",
        "",
        "## Training",
        "",
        f"* Base model: `{model['name']}`; pooler `{model['pooler']}`; mlp_only_train "
        f"{model.get('mlp_only_train')}; training batches truncated at {model.get('max_length')} tokens "
        "(`model.max_length`, training only)",
        f"* Data: `{recipe['data']['train']}` ({train_examples} examples)",
        f"* Loss: {recipe['loss']['name']} (temperature {recipe['loss']['temperature']}, hard-negative weight "
        f"{recipe['loss']['hard_negative_weight']}, MLM weight {recipe['loss']['mlm_weight']})",
        f"* Schedule: batch {recipe['train']['batch_size']}, lr {recipe['train']['learning_rate']}, "
        f"epochs {recipe['train']['epochs']}, max_steps {recipe['train']['max_steps']}, "
        f"precision {recipe['train']['precision']}, seed {recipe['train']['seed']}",
        f"* Optimisation steps taken: {steps}",
        f"* Saved weights: {_weights_sentence(best_dev, best_loaded, steps)}",
        "",
        "## Scores",
        "",
    ]
    if best_dev:
        lines += [f"Best dev{' (saved)' if best_loaded else ''} checkpoint: step {best_dev.get('steps')}, STS dev Spearman "
                  f"{best_dev.get('spearman', float('nan')):.2f}.", ""]
    lines += ["Test (cosine Spearman x100, SentEval protocol, 'all' aggregation):", "", _table(test_table or {})]
    for task, scores in (correlation_tables or {}).items():
        lines += [f"{task}: the 8 correlations (x100; SimCSE-KO's table):", "",
                  "| similarity | Pearson | Spearman |", "| --- | ---: | ---: |"]
        lines += [f"| {sim} | {scores[f'{sim}_pearson']:.2f} | {scores[f'{sim}_spearman']:.2f} |"
                  for sim in ("cosine", "euclidean", "manhattan", "dot")]
        lines.append("")
    if dev_history:
        lines += ["Dev history:", "", "| step | Spearman |", "| ---: | ---: |"]
        lines += [f"| {h['steps']} | {h['spearman']:.2f} |" for h in dev_history]
        lines.append("")
    if extra:
        lines += [extra, ""]
    return atomic_write_text(Path(folder) / "README.md", "\n".join(lines) + "\n")


def _length_sentence(max_seq_length: int | None) -> str:
    if not max_seq_length:
        return "not recorded."
    return (f"inputs are truncated at {max_seq_length} tokens (`max_seq_length` in "
            "`sentence_bert_config.json`, `model_max_length` in `tokenizer_config.json`); every score below "
            "was computed at this length.")


def _weights_sentence(best_dev: Mapping[str, Any] | None, best_loaded: bool, steps: int) -> str:
    if best_dev and best_loaded:
        last = ("also the last step" if best_dev.get("steps") == steps else f"not the last step ({steps})")
        return (f"those of the best dev step, {best_dev.get('steps')} (STS dev Spearman "
                f"{best_dev.get('spearman', float('nan')):.2f}; {last}).")
    return f"those of the last step ({steps})."
