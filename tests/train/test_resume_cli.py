"""Issue 16, item 2: `capcse train --resume` continues the run as it was started (RUN/recipe.yaml is the
truth and is never rewritten; only resume-safe --set keys), and a new run refuses a non-empty output folder
unless --overwrite. Item 12: --resume CHECKPOINT must be a checkpoint-* folder of the run itself."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from capcse.cli import main


def base_args(tiny, data, out, *extra):
    return ["train", "simcse-unsup-bert-base", "--output", str(out),
            "--set", f"model.name={tiny}", "--set", f"data.train={data}", "--set", "train.batch_size=4",
            "--set", "train.report_to=none", "--set", "eval.during=none", "--set", "eval.final=none",
            "--set", "train.device=cpu", "--set", "train.logging_steps=1", *extra]


@pytest.fixture(scope="module")
def data(tmp_path_factory, sentences):
    return sentences_file(tmp_path_factory.mktemp("resume-data"), sentences)


def sentences_file(folder, sentences):
    (folder / "sents.txt").write_text("\n".join(sentences * 2) + "\n", encoding="utf-8")
    return folder / "sents.txt"


@pytest.fixture(scope="module")
def started(tiny_bert_path, data, tmp_path_factory):
    """A 4-step run with checkpoints at steps 2 and 4, started with --set values that configs/ does not have."""
    out = tmp_path_factory.mktemp("resume") / "run"
    assert main(base_args(tiny_bert_path, data, out, "--set", "train.max_steps=4", "--set", "train.save_steps=2",
                          "--set", "train.learning_rate=7e-4", "--set", "train.save_total_limit=null")) == 0
    return out


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capcse train: error: "), err
    return lines[0]


def test_resume_uses_the_saved_recipe_not_configs(started, capsys):
    assert main(["train", "--output", str(started), "--resume", "--dry-run", "--set", "train.max_steps=6"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["train"]["learning_rate"] == 7e-4          # the start's --set, not configs/' 3e-5
    assert resolved["train"]["max_steps"] == 6 and resolved["train"]["output_dir"] == str(started)
    assert resolved["name"] == "simcse-unsup-bert-base"


def test_resume_extends_the_run_and_keeps_its_record(started, capsys):
    before = (started / "recipe.yaml").read_bytes()
    assert main(["train", "simcse-unsup-bert-base", "--output", str(started), "--resume",
                 "--set", "train.max_steps=6", "--set", "train.learning_rate=7e-4"]) == 0  # restating is fine
    printed = capsys.readouterr().out
    assert "resuming from " + str(started / "checkpoint-4") in printed
    assert json.loads((started / "train_summary.json").read_text())["steps"] == 6
    assert (started / "recipe.yaml").read_bytes() == before
    log = [json.loads(line) for line in (started / "resumes.jsonl").read_text().splitlines()]
    assert log[-1]["checkpoint"] == "latest"
    assert log[-1]["overrides"] == ["train.max_steps=6", "train.learning_rate=7e-4"]


@pytest.mark.parametrize("extra, message", [
    (["--set", "train.learning_rate=1e-3"], "train.learning_rate=1e-3 would change what the run trains"),
    (["--set", "loss.temperature=0.1"], "loss.temperature=0.1 would change what the run trains"),
    (["--set", "data.train=other.txt"], "data.train=other.txt would change"),
    (["--overwrite"], "--resume and --overwrite contradict each other"),
])
def test_resume_refuses_changes_to_what_is_trained(started, capsys, extra, message):
    before = (started / "recipe.yaml").read_bytes()
    assert main(["train", "--output", str(started), "--resume", "--dry-run", *extra]) == 2
    assert message in one_error_line(capsys)
    assert (started / "recipe.yaml").read_bytes() == before


def test_resume_refuses_another_recipe_and_a_folder_without_a_run(started, tmp_path, capsys):
    assert main(["train", "simcse-sup-bert-base", "--output", str(started), "--resume", "--dry-run"]) == 2
    assert "is a run of recipe 'simcse-unsup-bert-base', not 'simcse-sup-bert-base'" in one_error_line(capsys)
    assert main(["train", "--output", str(tmp_path), "--resume"]) == 2
    assert "recipe.yaml not found" in one_error_line(capsys)
    assert main(["train", "--resume"]) == 2
    assert "give the run with --output RUN" in one_error_line(capsys)


def test_resume_checkpoint_must_belong_to_the_run(started, tmp_path, capsys):
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import resolve_resume

    recipe = load_recipe(started / "recipe.yaml", [f"train.output_dir={started}"])
    assert resolve_resume(recipe, "checkpoint-2") == str(started / "checkpoint-2")  # a name inside the run
    assert resolve_resume(recipe, str(started / "checkpoint-2")) == str(started / "checkpoint-2")
    foreign = tmp_path / "checkpoint-2"
    shutil.copytree(started / "checkpoint-2", foreign)  # same files, another folder: its pickles are not loaded
    assert main(["train", "--output", str(started), "--resume", str(foreign)]) == 2
    assert "not a checkpoint-* folder of the run" in one_error_line(capsys)
    (started / "checkpoint-9").mkdir()  # interrupted while saving: no trainer_state.json
    try:
        assert main(["train", "--output", str(started), "--resume", "checkpoint-9"]) == 2
        assert "incomplete checkpoint" in one_error_line(capsys)
    finally:
        (started / "checkpoint-9").rmdir()


def test_a_new_run_refuses_a_non_empty_folder_unless_overwrite(tiny_bert_path, data, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoint-99").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    args = base_args(tiny_bert_path, data, out, "--set", "train.max_steps=1")
    assert main(args) == 2
    assert f"output dir {out} is not empty (checkpoint-99, notes.txt)" in one_error_line(capsys)
    assert main(args + ["--overwrite"]) == 0
    assert not (out / "checkpoint-99").exists()                 # a stale checkpoint would confuse --resume
    assert (out / "notes.txt").read_text() == "mine"             # what capcse did not write stays
    assert (out / "model" / "model.safetensors").is_file()
