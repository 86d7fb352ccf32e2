"""Recipes: every shipped SimCSE config loads (dry run), --set overrides any value, bad input is clear."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from capcse.cli import main
from capcse.errors import ConfigError, DataFormatError
from capcse.train.recipe import configs_dir, load_recipe

CONFIGS = sorted(p.stem for p in configs_dir().glob("simcse-*.yaml")) + ["caption-simcse"]


def test_the_papers_recipes_are_all_there():
    assert set(CONFIGS) >= {"simcse-unsup-bert-base", "simcse-sup-bert-base", "simcse-unsup-roberta-base",
                            "simcse-ko-unsup", "simcse-ko-sup", "caption-simcse"}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_loads_and_dry_runs(name, capsys):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.reference
    assert main(["train", name, "--dry-run", "--set", "train.seed=3"]) == 0
    dumped = yaml.safe_load(capsys.readouterr().out)
    assert dumped["name"] == name and dumped["train"]["seed"] == 3
    assert dumped["model"]["name"] == recipe.model.name


PAPER = {  # (model, pooler, mlp_only_train, batch, lr, epochs, max_len, during, final)
    "simcse-unsup-bert-base": ("bert-base-uncased", "cls", True, 64, 3e-5, 1, 32, "stsb-dev", ["sts"]),
    "simcse-unsup-roberta-base": ("roberta-base", "cls", True, 512, 1e-5, 1, 32, "stsb-dev", ["sts"]),
    "simcse-sup-bert-base": ("bert-base-uncased", "cls", False, 512, 5e-5, 3, 32, "stsb-dev", ["sts"]),
    "simcse-ko-unsup": ("klue/bert-base", "cls_before_pooler", False, 256, 5e-5, 1, 64, "korsts-dev", ["korsts"]),
    "simcse-ko-sup": ("klue/bert-base", "cls_before_pooler", False, 256, 5e-5, 1, 64, "korsts-dev", ["korsts"]),
    "caption-simcse": ("bert-base-uncased", "cls", True, 16, 3e-5, 1, 10, "stsb-dev", ["sts"]),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipes_hold_the_papers_settings(name):
    r = load_recipe(name)
    got = (r.model.name, r.model.pooler, r.model.mlp_only_train, r.train.batch_size, r.train.learning_rate,
           r.train.epochs, r.model.max_length, r.eval.during, r.eval.final)
    assert got == PAPER[name]
    assert r.loss.temperature == 0.05 and r.loss.hard_negative_weight == 0.0


def test_final_tasks_are_known_to_the_evaluation_suite():
    from capcse.evaluation.suite import resolve_tasks
    from capcse.train.trainer import dev_task

    for name in CONFIGS:
        r = load_recipe(name)
        assert resolve_tasks(r.eval.final, r.eval.mode)
        assert dev_task(r) in ("stsb", "korsts")


def test_supervised_recipes_read_simcse_triplet_columns():
    for name in ("simcse-sup-bert-base", "simcse-ko-sup"):
        assert load_recipe(name).data.columns == ["sent0", "sent1", "hard_neg"]


def test_overrides_are_parsed_as_yaml(tmp_path):
    r = load_recipe("simcse-unsup-bert-base", ["train.learning_rate=1e-5", "eval.final=[sts,transfer]",
                                               "model.mlp_only_train=false", "data.limit=100",
                                               "loss.mini_batch_size=16", "eval.during=none",
                                               "train.output_dir=" + str(tmp_path / "o")])
    assert r.train.learning_rate == 1e-5 and r.eval.final == ["sts", "transfer"]
    assert r.model.mlp_only_train is False and r.data.limit == 100 and r.loss.mini_batch_size == 16
    assert r.eval.during == "none" and r.output_dir == tmp_path / "o"
    assert load_recipe("simcse-unsup-bert-base", ["eval.final=korsts"]).eval.final == ["korsts"]


def test_cli_shortcuts(capsys, tmp_path):
    assert main(["train", "caption-simcse", "--dry-run", "--output", str(tmp_path), "--data-dir", "/d"]) == 0
    dumped = yaml.safe_load(capsys.readouterr().out)
    assert dumped["train"]["output_dir"] == str(tmp_path)
    assert dumped["data"]["data_dir"] == dumped["eval"]["data_dir"] == "/d"


@pytest.mark.parametrize("override,match", [
    ("train.batch_size=many", "expected int"),
    ("train.batch_size=1.5", "expected int"),
    ("model.mlp_only_train=maybe", "expected bool"),
    ("train.no_such_key=1", "unknown key"),
    ("nonsense=1", "unknown key"),
    ("train", "key=value"),
    ("model.name.deeper=1", "not a section"),
])
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe("simcse-unsup-bert-base", [override])


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ConfigError, match="simcse-unsup-bert-base"):
        load_recipe("no-such-recipe")


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model:\n  name: x\n  pooler: [unclosed\ntrain:\n  batch_size: 2\n")
    with pytest.raises(DataFormatError) as err:
        load_recipe(str(path))
    assert err.value.path == str(path) and err.value.line is not None


def test_cli_reports_errors_without_traceback(capsys):
    assert main(["train", "simcse-unsup-bert-base", "--dry-run", "--set", "train.batch_size=x"]) == 2
    assert "capcse train: error:" in capsys.readouterr().err


def test_a_recipe_file_path_works(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(Path(configs_dir() / "simcse-ko-sup.yaml").read_text())
    assert load_recipe(str(path)).name == "simcse-ko-sup"


@pytest.mark.parametrize("override,match", [("train.precision=fp8", "train.precision must be"),
                                            ("train.fast_dropout=sometimes", "train.fast_dropout must be")])
def test_bad_switches_fail_before_the_model_loads(tmp_path, override, match):
    """The model name points nowhere: had run_training loaded it first, the error would be a different one."""
    from capcse.train.trainer import run_training

    recipe = load_recipe("simcse-unsup-bert-base", ["model.name=/nonexistent/model", "train.device=cpu",
                                                    f"train.output_dir={tmp_path / 'out'}", override])
    with pytest.raises(ConfigError, match=match):
        run_training(recipe)
    assert not (tmp_path / "out").exists()  # nothing written either


@pytest.mark.parametrize("override, message", [
    ("train.learning_rate=-1", "train.learning_rate must be > 0, got -1.0"),
    ("train.learning_rate=.nan", "train.learning_rate must be > 0, got nan"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.max_steps=0", "train.max_steps must be -1 (use epochs) or >= 1, got 0"),
    ("train.warmup_ratio=1.5", "train.warmup_ratio must be in [0, 1), got 1.5"),
    ("loss.temperature=0", "loss.temperature must be > 0, got 0.0"),
    ("loss.mlm_probability=1", "loss.mlm_probability must be in (0, 1), got 1.0"),
    ("model.max_length=0", "model.max_length must be >= 1, got 0"),
])
def test_out_of_range_values_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe("simcse-unsup-bert-base", [override])
    assert load_recipe("simcse-unsup-bert-base", ["train.max_steps=-1", "train.save_steps=null"]).train.max_steps == -1


def test_one_resume_check_serves_train_and_pretrain(tmp_path):
    """capcse train and capcse pretrain refuse the same kind of resume --set through one function, each with
    its own resume-safe keys: a safe key passes, a restated saved value passes, a changed unsafe value is named."""
    from capcse.cli.train import RESUME_SAFE as TRAIN_SAFE
    from capcse.train.pretrain import RESUME_SAFE as PRETRAIN_SAFE, PretrainRecipe
    from capcse.train.recipe import dump_recipe, is_resume_safe, unsafe_resume_overrides

    assert is_resume_safe("eval.steps", ("eval.*",)) and not is_resume_safe("evaluation.steps", ("eval.*",))
    train = tmp_path / "train.yaml"
    train.write_text(dump_recipe(load_recipe("simcse-unsup-bert-base", ["train.learning_rate=0.0007"])))
    assert unsafe_resume_overrides(train, ["train.max_steps=9", "eval.steps=5", "train.learning_rate=7e-4",
                                           "train.learning_rate=1e-3", "train.seed=1"], TRAIN_SAFE) == [
        "train.learning_rate=1e-3", "train.seed=1"]
    pretrain = tmp_path / "pretrain.yaml"
    pretrain.write_text(dump_recipe(load_recipe("mlm-bert-mini", kind=PretrainRecipe)))
    saved_lr = load_recipe(pretrain, kind=PretrainRecipe).train.learning_rate
    assert unsafe_resume_overrides(pretrain, ["train.max_steps=9", "train.progress=off",
                                              f"train.learning_rate={saved_lr}", "train.learning_rate=0.1",
                                              "mlm.probability=0.2"], PRETRAIN_SAFE, kind=PretrainRecipe) == [
        "train.learning_rate=0.1", "mlm.probability=0.2"]
