"""The model card written into a trained model's folder says what each loading path returns."""

from __future__ import annotations

import pytest

from capcse.report.model_card import write_model_card
from capcse.train.recipe import recipe_from_dict


def card(tmp_path, pooler, mlp_only_train, **kw):
    recipe = recipe_from_dict({"name": "r", "model": {"pooler": pooler, "mlp_only_train": mlp_only_train}}).to_dict()
    return write_model_card(tmp_path, recipe=recipe, steps=5, train_examples=10, **kw).read_text()


@pytest.mark.parametrize("pooler,mlp_only,in_pooler,automodel", [
    ("cls", True, True, "`outputs.last_hidden_state[:, 0]`"),
    ("cls", False, True, "`outputs.pooler_output`"),
    ("cls", False, False, "`outputs.last_hidden_state[:, 0]` is [CLS] *before* the MLP"),
    ("avg", False, True, "masked mean of `outputs.last_hidden_state`"),
    ("cls_before_pooler", False, True, "`outputs.last_hidden_state[:, 0]`"),
])
def test_loading_paths(tmp_path, pooler, mlp_only, in_pooler, automodel):
    text = card(tmp_path, pooler, mlp_only, mlp_in_pooler=in_pooler)
    assert f"With `transformers.AutoModel.from_pretrained(PATH)`: {automodel}" in text
    assert "Optimisation steps taken: 5" in text and "(10 examples)" in text


def test_scores_and_korsts_table(tmp_path):
    scores = {f"{s}_{c}": 10.0 + i for i, (s, c) in enumerate(
        (s, c) for s in ("cosine", "euclidean", "manhattan", "dot") for c in ("pearson", "spearman"))}
    text = card(tmp_path, "cls", True, best_dev={"steps": 4, "spearman": 71.234},
                test_table={"STS12": 60.0, "Avg.": 61.5}, dev_history=[{"steps": 4, "spearman": 71.234}],
                correlation_tables={"KorSTS": scores})
    assert "Best dev checkpoint: step 4, STS dev Spearman 71.23." in text
    assert "| STS12 | Avg. |" in text and "| 60.00 | 61.50 |" in text
    assert "| manhattan | 14.00 | 15.00 |" in text and "| dot | 16.00 | 17.00 |" in text
    assert "| 4 | 71.23 |" in text


def front_matter_of(text):
    import yaml

    assert text.startswith("---\n")
    return yaml.safe_load(text[4:text.index("\n---\n", 4)])


def test_hugging_face_front_matter(tmp_path):
    """Issue 16 item 10: the hub's YAML metadata; an alias becomes its hub id, wiki1m the hub dataset its
    file comes from; metrics only when something was evaluated."""
    recipe = recipe_from_dict({"name": "r", "model": {"name": "all-MiniLM-L6-v2"},
                               "data": {"train": "wiki1m"}}).to_dict()
    text = write_model_card(tmp_path, recipe=recipe, steps=5, train_examples=10,
                            test_table={"STSBenchmark": 80.0}).read_text()
    meta = front_matter_of(text)
    assert meta["library_name"] == "sentence-transformers"
    assert {"sentence-transformers", "sentence-similarity", "capcse", "simcse"} <= set(meta["tags"])
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["princeton-nlp/datasets-for-simcse"]
    assert meta["metrics"] == ["spearman_cosine"]
    assert text.index("\n---\n") < text.index("# r\n")


def test_front_matter_leaves_out_what_is_not_on_the_hub(tmp_path):
    recipe = recipe_from_dict({"name": "r", "model": {"name": str(tmp_path)},
                               "data": {"train": str(tmp_path / "x.txt")}}).to_dict()
    meta = front_matter_of(write_model_card(tmp_path, recipe=recipe, steps=1, train_examples=1).read_text())
    assert "base_model" not in meta and "datasets" not in meta and "metrics" not in meta
    hf = recipe_from_dict({"name": "r", "model": {"name": "roberta-base"},
                           "data": {"train": "hf:sentence-transformers/all-nli:pair:train"}}).to_dict()
    meta = front_matter_of(write_model_card(tmp_path, recipe=hf, steps=1, train_examples=1).read_text())
    assert meta["base_model"] == "roberta-base" and meta["datasets"] == ["sentence-transformers/all-nli"]


@pytest.mark.parametrize("best_loaded,best_step,expected", [
    (True, 4, "Saved weights: those of the best dev step, 4 (STS dev Spearman 71.23; not the last step (5))."),
    (True, 5, "Saved weights: those of the best dev step, 5 (STS dev Spearman 71.23; also the last step)."),
    (False, 4, "Saved weights: those of the last step (5)."),
])
def test_card_says_which_step_the_weights_are_from(tmp_path, best_loaded, best_step, expected):
    text = card(tmp_path, "cls", True, best_dev={"steps": best_step, "spearman": 71.234}, best_loaded=best_loaded)
    assert expected in text
    assert ("Best dev (saved) checkpoint" in text) == best_loaded


def test_card_states_the_inference_length(tmp_path):
    text = card(tmp_path, "cls", True, max_seq_length=512)
    assert "Inference length: inputs are truncated at 512 tokens" in text
    assert "training batches truncated at 32 tokens (`model.max_length`, training only)" in text
