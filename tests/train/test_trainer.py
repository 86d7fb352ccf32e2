"""run_training end to end on a tiny BERT: what is saved, how each loading path reads it, the model
card, hard-negative weight and MLM options reaching the trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from capcse.train.recipe import recipe_from_dict


def tiny_recipe(out, model_path, train_path, **sections):
    data = {
        "name": "tiny", "description": "test run", "reference": "tests",
        "model": {"name": str(model_path), "pooler": "cls", "mlp_only_train": True, "max_length": 32},
        "data": {"train": str(train_path)},
        "loss": {"temperature": 0.05},
        "train": {"output_dir": str(out), "batch_size": 4, "learning_rate": 1e-3, "max_steps": 3,
                  "report_to": ["none"], "logging_steps": 1, "seed": 7, "device": "cpu"},
        "eval": {"during": "none", "final": []},
    }
    for section, values in sections.items():
        data[section].update(values)
    return recipe_from_dict(data)


@pytest.fixture(scope="module")
def train_text(tmp_path_factory, sentences):
    path = tmp_path_factory.mktemp("data") / "sents.txt"
    path.write_text("\n".join(sentences * 2) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tiny_bert_path, train_text, tmp_path_factory):
    """Two short runs: mlp_only_train on and off."""
    from capcse.train.trainer import run_training

    runs = {}
    for flag in (True, False):
        out = tmp_path_factory.mktemp(f"run-mlp-only-{flag}")
        recipe = tiny_recipe(out, tiny_bert_path, train_text, model={"mlp_only_train": flag})
        runs[flag] = run_training(recipe, log=lambda *_: None)
    return runs


PROBE = ["a man is playing a guitar .", "the stock market fell sharply today .", "two dogs run ."]


def automodel_outputs(path):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    with torch.no_grad():
        out = model(**tok(PROBE, padding=True, return_tensors="pt"))
    return out.last_hidden_state[:, 0].numpy(), out.pooler_output.numpy()


@pytest.mark.parametrize("mlp_only_train", [True, False])
def test_loading_paths_agree(trained, mlp_only_train):
    """models/heads.py: with mlp_only_train the embedding is [CLS] before the MLP
    (last_hidden_state[:, 0]); without it, MLP([CLS]) (pooler_output). Every path gives the same."""
    from sentence_transformers import SentenceTransformer

    from capcse.models import load_encoder

    path = trained[mlp_only_train].model_dir
    st = SentenceTransformer(str(path), device="cpu").encode(PROBE, convert_to_numpy=True)
    cls, pooler = automodel_outputs(path)
    want = cls if mlp_only_train else pooler
    np.testing.assert_allclose(st, want, atol=1e-5)
    np.testing.assert_allclose(load_encoder(path, device="cpu").encode(PROBE), want, atol=1e-5)
    # pooler_output is MLP([CLS]) either way: the trained head, also reachable as pooler 'cls'
    np.testing.assert_allclose(load_encoder(path, pooler="cls", device="cpu").encode(PROBE), pooler, atol=1e-5)
    assert not np.allclose(cls, pooler, atol=1e-3)
    card = (path / "README.md").read_text()
    expected = "`outputs.last_hidden_state[:, 0]`" if mlp_only_train else "`outputs.pooler_output`"
    assert f"With `transformers.AutoModel.from_pretrained(PATH)`: {expected}" in card


def test_the_mlp_is_trained_and_saved(trained, tiny_bert_path):
    """The saved pooler holds the MLP trained by SimCSE (fresh init, then updated), not the base's."""
    from safetensors.torch import load_file

    base = load_file(str(tiny_bert_path / "model.safetensors"))
    for flag in (True, False):
        saved = load_file(str(trained[flag].model_dir / "model.safetensors"))
        key = next(k for k in saved if k.endswith("pooler.dense.weight"))
        base_key = next(k for k in base if k.endswith("pooler.dense.weight"))
        assert not torch.allclose(saved[key], base[base_key])
        assert saved[key].std() < 0.1  # re-initialised N(0, 0.02) and trained 3 steps


def test_weights_are_safetensors_only(trained):
    for run in trained.values():
        every = [p.name for p in run.output_dir.rglob("*")]
        assert "model.safetensors" in every
        assert not [n for n in every if n.endswith(".bin") and n != "training_args.bin"]
        assert not (run.model_dir / "pytorch_model.bin").exists()


def test_summary_card_and_recipe(trained):
    run = trained[True]
    summary = json.loads((run.output_dir / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["train_examples"] == 24
    card = (run.model_dir / "README.md").read_text()
    assert "Optimisation steps taken: 3" in card and "mlp_only_train True" in card
    from capcse.train.recipe import load_recipe

    again = load_recipe(run.output_dir / "recipe.yaml")
    assert again.model.mlp_only_train is True and again.train.max_steps == 3


def test_hard_negative_weight_reaches_the_loss(tiny_bert_path, tmp_path):
    """--set loss.hard_negative_weight=w: the objective's loss on a real triplet batch is SimCSE's Eq. 5
    with log-weight w on each anchor's own hard negative (computed here independently in numpy)."""
    from capcse.train.trainer import build_model, build_objective

    w = 1.3
    recipe = tiny_recipe(tmp_path, tiny_bert_path, tmp_path / "unused.csv", loss={"hard_negative_weight": w})
    model = build_model(recipe)
    model.eval()
    objective = build_objective(recipe, model)
    assert objective.loss.hard_negative_weight == w
    cols = [["a man plays .", "a dog runs .", "it rains ."], ["a man is playing .", "a dog is running .",
                                                            "rain falls ."], ["a woman sleeps .", "a cat sits .", "it is sunny ."]]
    feats = [dict(model.preprocess(c)) for c in cols]
    with torch.no_grad():
        got = objective(feats).item()
        h, hp, hn = (model.encode(c, convert_to_numpy=True).astype(np.float64) for c in cols)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    pos, neg = unit(h) @ unit(hp).T / 0.05, unit(h) @ unit(hn).T / 0.05 + w * np.eye(3)
    logits = np.concatenate([pos, neg], axis=1)
    want = np.mean(np.log(np.exp(logits).sum(1)) - np.diag(pos))
    assert got == pytest.approx(want, rel=1e-4)
    objective.loss.hard_negative_weight = 0.0
    with torch.no_grad():
        assert objective(feats).item() < got  # w > 0: the hard negative counts e^w times


def test_mlm_auxiliary_loss_changes_the_gradient_by_its_own_gradient(tiny_st, featurize, sentences):
    """loss = l_cl + lambda * l_mlm: the gradient moves by exactly lambda * grad(l_mlm)."""
    from capcse.losses.simcse import SimCSELoss
    from capcse.train.objective import SimCSEObjective, concat_features

    model = tiny_st()
    model.eval()
    feats = [featurize(model, sentences[:6])]
    objective = SimCSEObjective(model, SimCSELoss(0.05), mlm_weight=0.1, mlm_probability=0.3)

    def grads_of(fn):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        fn().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    total = grads_of(lambda: objective(feats))

    def mlm_only():
        batch = concat_features(objective.columns(feats), objective.pad_token_id)
        s, count = objective.mlm_sum(objective.mlm_features(batch))
        assert count > 0
        return s / count

    objective.mlm_weight = 0.0
    contrastive = grads_of(lambda: objective(feats))
    mlm = grads_of(mlm_only)
    word = next(k for k in total if k.endswith("word_embeddings.weight"))
    assert (total[word] - contrastive[word]).abs().max() > 1e-6
    for k in total:
        torch.testing.assert_close(total[k], contrastive[k] + 0.1 * mlm.get(k, torch.zeros_like(total[k])),
                                   atol=1e-6, rtol=1e-4)


def test_training_with_mlm_checkpoints_its_head(tiny_bert_path, train_text, tmp_path):
    from safetensors.torch import load_file

    from capcse.train.trainer import OBJECTIVE_STATE, run_training

    recipe = tiny_recipe(tmp_path, tiny_bert_path, train_text, loss={"mlm_weight": 0.1},
                         train={"max_steps": 2, "save_steps": 2})
    result = run_training(recipe, log=lambda *_: None)
    state = load_file(str(tmp_path / "checkpoint-2" / OBJECTIVE_STATE))
    assert set(state) == {f"mlm_head.{k}" for k in ("dense.weight", "dense.bias", "norm.weight", "norm.bias",
                                                    "decoder.weight", "decoder.bias")}
    assert not [k for k in load_file(str(result.model_dir / "model.safetensors")) if "mlm" in k]


def test_resume_without_checkpoint_is_a_clear_error(tiny_bert_path, train_text, tmp_path):
    from capcse.errors import ConfigError
    from capcse.train.trainer import run_training

    with pytest.raises(ConfigError, match="no complete checkpoint"):
        run_training(tiny_recipe(tmp_path, tiny_bert_path, train_text), resume=True)


def test_unknown_dev_task_is_a_clear_error(tiny_bert_path, train_text, tmp_path):
    from capcse.errors import ConfigError
    from capcse.train.trainer import run_training

    with pytest.raises(ConfigError, match="eval.during"):
        run_training(tiny_recipe(tmp_path, tiny_bert_path, train_text, eval={"during": "sts12-dev"}))


@pytest.mark.slow  # two STS-B dev evaluations during training + one of the saved model (~20 s of CPU)
def test_dev_evaluation_keeps_the_best_checkpoint(tiny_bert_path, train_text, tmp_path, data_dir):
    """STS-B dev every 3 steps on the inference form; the saved model is the best checkpoint, and its
    STS-B dev Spearman (recomputed from the saved folder) is the best one logged."""
    from capcse.evaluation.sts import evaluate_sts
    from capcse.models import load_encoder
    from capcse.train.trainer import run_training

    recipe = tiny_recipe(tmp_path, tiny_bert_path, train_text,
                         train={"max_steps": 6, "learning_rate": 5e-3},
                         eval={"during": "stsb-dev", "steps": 3, "load_best": True, "data_dir": str(data_dir)})
    result = run_training(recipe, log=lambda *_: None)
    scores = [h["spearman"] for h in result.dev_history]
    assert [h["steps"] for h in result.dev_history] == [3, 6] and len(set(scores)) == 2
    assert result.best_dev["spearman"] == max(scores)
    saved = evaluate_sts(load_encoder(result.model_dir, device="cpu"), ["stsb"], "dev", data_dir=data_dir)
    assert saved.tasks["stsb"].spearman == pytest.approx(max(scores), abs=1e-4)
    card = (result.model_dir / "README.md").read_text()
    assert f"step {result.best_dev['steps']}" in card
    assert f"Saved weights: those of the best dev step, {result.best_dev['steps']}" in card and result.best_loaded
    # dev evaluation ran at the inference length (the tiny BERT's 128), not the training length (32)
    assert [h["max_seq_length"] for h in result.dev_history] == [128, 128]


def test_cli_train_runs_and_reports(tiny_bert_path, train_text, tmp_path, capsys):
    from capcse.cli import main

    out = tmp_path / "cli"
    code = main(["train", "simcse-unsup-bert-base", "--output", str(out),
                 "--set", f"model.name={tiny_bert_path}", "--set", f"data.train={train_text}",
                 "--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "train.logging_steps=1",
                 "--set", "train.report_to=none", "--set", "eval.during=none", "--set", "eval.final=none"])
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{\n"):printed.index("\n}") + 2])
    assert summary["steps"] == 2 and summary["last_loss"]["step"] == 2
    assert f"model: {out / 'model'}" in printed and (out / "model" / "model.safetensors").is_file()


def test_bf16_accumulation_gradcache_length_grouping_and_tensorboard(tiny_bert_path, train_text, tmp_path):
    """The Trainer's switches through a recipe: bf16 autocast, gradient accumulation, warm-up, GradCache,
    length-grouped batches, TensorBoard logging, all in one short run."""
    from capcse.train.trainer import run_training

    recipe = tiny_recipe(tmp_path, tiny_bert_path, train_text, loss={"mini_batch_size": 3},
                         train={"precision": "bf16", "gradient_accumulation_steps": 2, "warmup_ratio": 0.5,
                                "group_by_length": True, "report_to": ["tensorboard"], "max_steps": 2})
    result = run_training(recipe, log=lambda *_: None)
    assert result.steps == 2 and all(np.isfinite(x["loss"]) for x in result.losses)
    assert list(tmp_path.rglob("events.out.tfevents.*"))


def test_any_hugging_face_dataset_folder(tiny_bert_path, tmp_path):
    from capcse.train.data import load_train_dataset

    folder = tmp_path / "hfdata"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"anchor": f"a{i}", "positive": f"p{i}", "n": i}) + "\n"
                                                for i in range(5)))
    ds = load_train_dataset(f"hf:{folder}", columns=["anchor", "positive"])
    assert ds.column_names == ["anchor", "positive"] and ds["positive"] == [f"p{i}" for i in range(5)]


LONG = ("a man with a red hat is playing an old guitar on the corner of a busy street while two small dogs "
        "sleep in the sun near a green bench and children laugh at the old man with the guitar")


def test_training_length_cuts_training_batches_only(tiny_bert_path, train_text, tmp_path, monkeypatch):
    """Issue 13 §1: model.max_length=8 truncates every training batch at 8 tokens (the widths the
    objective receives), while the saved model keeps the start model's length (the tiny BERT: 128
    positions), so SentenceTransformer(path), AutoModel and load_encoder all encode a 40-token sentence
    whole: each equals [CLS] of one untruncated forward pass of the saved weights."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from capcse.models import load_encoder
    from capcse.train.objective import SimCSEObjective
    from capcse.train.trainer import run_training

    widths = []
    original = SimCSEObjective.forward

    def spy(self, sentence_features, labels=None):
        features = list(sentence_features)
        widths.extend(f["input_ids"].size(1) for f in features)
        return original(self, features, labels)

    monkeypatch.setattr(SimCSEObjective, "forward", spy)
    recipe = tiny_recipe(tmp_path, tiny_bert_path, train_text, model={"max_length": 8}, train={"max_steps": 2})
    result = run_training(recipe, log=lambda *_: None)
    assert len(widths) == 2 and widths == [8, 8]  # every batch has a sentence longer than 8 tokens
    assert result.max_seq_length == 128 and json.loads((tmp_path / "train_summary.json").read_text())[
        "max_seq_length"] == 128

    path = result.model_dir
    tok = AutoTokenizer.from_pretrained(str(path))
    assert len(tok(LONG, add_special_tokens=False)["input_ids"]) == 40
    whole = tok([LONG], return_tensors="pt", truncation=False)
    assert whole["input_ids"].shape[1] == 42
    assert tok([LONG], truncation=True, return_tensors="pt")["input_ids"].shape[1] == 42  # AutoModel path
    automodel = AutoModel.from_pretrained(str(path)).eval()
    with torch.no_grad():
        want = automodel(**whole).last_hidden_state[:, 0].numpy()
        cut = automodel(**{k: v[:, :8] for k, v in whole.items()}).last_hidden_state[:, 0].numpy()
    assert not np.allclose(want, cut, atol=1e-3)  # truncation would show
    st = SentenceTransformer(str(path), device="cpu")
    assert st.max_seq_length == 128
    np.testing.assert_allclose(st.encode([LONG]), want, atol=1e-5)
    np.testing.assert_allclose(load_encoder(path, device="cpu").encode([LONG]), want, atol=1e-5)
    assert "Inference length: inputs are truncated at 128 tokens" in (path / "README.md").read_text()


def test_inference_length_setting(tiny_bert_path, train_text, tmp_path):
    """model.inference_max_length replaces the start model's length; bad lengths are ConfigErrors."""
    from capcse.errors import ConfigError
    from capcse.train.trainer import build_model, check_train_switches

    assert build_model(tiny_recipe(tmp_path, tiny_bert_path, train_text)).max_seq_length == 128
    chosen = tiny_recipe(tmp_path, tiny_bert_path, train_text, model={"inference_max_length": 20})
    assert build_model(chosen).max_seq_length == 20
    for bad in ({"max_length": 0}, {"inference_max_length": -3}, {"max_length": True}):
        with pytest.raises(ConfigError, match=r"model\.(inference_)?max_length(: expected int| must be >= 1)"):
            check_train_switches(tiny_recipe(tmp_path, tiny_bert_path, train_text, model=bad))


@pytest.mark.parametrize("setting,disabled", [("on", False), ("off", True), ("auto", True)])
def test_training_progress_bar_setting(tiny_bert_path, train_text, tmp_path, setting, disabled):
    """Issue 16 item 7: train.progress turns the Trainer's step bar on/off; auto shows it only on a
    terminal (pytest's stderr is not one). A bad value is a ConfigError before anything loads."""
    from capcse.errors import ConfigError
    from capcse.train.trainer import check_train_switches, training_arguments

    recipe = tiny_recipe(tmp_path, tiny_bert_path, train_text, train={"progress": setting})
    assert training_arguments(recipe, evaluate=False).disable_tqdm is disabled
    with pytest.raises(ConfigError, match="train.progress"):
        check_train_switches(tiny_recipe(tmp_path, tiny_bert_path, train_text, train={"progress": "sometimes"}))


def test_max_grad_norm_reaches_the_trainer(tiny_bert_path, train_text, tmp_path):
    """train.max_grad_norm (default 1.0, SimCSE's) is the Trainer's clipping threshold; docs/training.md
    says to set it to W x 1.0 to clip where a W-process SimCSE run clips."""
    from capcse.train.trainer import training_arguments

    assert training_arguments(tiny_recipe(tmp_path, tiny_bert_path, train_text), evaluate=False).max_grad_norm == 1.0
    recipe = tiny_recipe(tmp_path, tiny_bert_path, train_text, train={"max_grad_norm": 4})
    assert training_arguments(recipe, evaluate=False).max_grad_norm == 4.0
