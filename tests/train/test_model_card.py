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
