"""The model card (README.md) written into a trained model's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

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
}


def _table(rows: Mapping[str, float]) -> str:
    if not rows:
        return "_not evaluated_\n"
    head = "| " + " | ".join(rows) + " |\n| " + " | ".join("---:" for _ in rows) + " |\n"
    return head + "| " + " | ".join(f"{v:.2f}" for v in rows.values()) + " |\n"


def write_model_card(folder: str | Path, *, recipe: Mapping[str, Any], steps: int, train_examples: int,
                     best_dev: Mapping[str, Any] | None = None, test_table: Mapping[str, float] | None = None,
                     dev_history: list[Mapping[str, Any]] | None = None,
                     correlation_tables: Mapping[str, Mapping[str, float]] | None = None, extra: str = "",
                     mlp_in_pooler: bool = True) -> Path:
    """Write README.md into ``folder``. ``mlp_in_pooler``: the encoder's own pooler holds SimCSE's MLP
    (BERT, RoBERTa); False for encoders without one (DistilBERT), whose MLP is a Dense module."""
    model = recipe["model"]
    key = "cls_mlp_only_train" if model["pooler"] == "cls" and model.get("mlp_only_train") else model["pooler"]
    if key == "cls" and not mlp_in_pooler:
        key = "cls_dense"
    what, automodel = LOADING.get(key, (model["pooler"], "see capcse.models.poolers"))
    lines = [
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
        "",
        "## Training",
        "",
        f"* Base model: `{model['name']}`; pooler `{model['pooler']}`; mlp_only_train "
        f"{model.get('mlp_only_train')}; max_length {model.get('max_length')}",
        f"* Data: `{recipe['data']['train']}` ({train_examples} examples)",
        f"* Loss: {recipe['loss']['name']} (temperature {recipe['loss']['temperature']}, hard-negative weight "
        f"{recipe['loss']['hard_negative_weight']}, MLM weight {recipe['loss']['mlm_weight']})",
        f"* Schedule: batch {recipe['train']['batch_size']}, lr {recipe['train']['learning_rate']}, "
        f"epochs {recipe['train']['epochs']}, max_steps {recipe['train']['max_steps']}, "
        f"precision {recipe['train']['precision']}, seed {recipe['train']['seed']}",
        f"* Optimisation steps taken: {steps}",
        "",
        "## Scores",
        "",
    ]
    if best_dev:
        lines += [f"Best dev checkpoint: step {best_dev.get('steps')}, STS dev Spearman "
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
