"""`capcse experiment`: finished runs are skipped, the aggregate is mean ± sample std of fabricated run outputs,
a failed run fails the experiment clearly (finished runs stay), every committed spec resolves in a dry run."""

from __future__ import annotations

import json
import statistics
import sys
import textwrap
from pathlib import Path

import pytest

from capcse.cli import main
from capcse.experiment import Context, aggregate, load_spec, markdown, plan_runs
from capcse.experiment.runner import MARKER, run_commands
from capcse.experiment.spec import experiments_dir, select

# A command row whose metrics are a capcse eval results.json made up from the seed: STS-B 80 + seed,
# SICK-R 70 + 2 * seed, Avg. 75 + seed; it appends its seed to ${out}/calls.txt, so re-executions are visible.
FAKE_EVAL = ("import json, sys; s = int(sys.argv[1]); open(sys.argv[3], 'a').write(sys.argv[1] + ' '); "
             "json.dump({'results': {'STS-B': {'cosine_spearman': 80 + s}, 'SICK-R': {'cosine_spearman': 70 + 2 * s}},"
             " 'averages': {'sts': 75 + s}}, open(sys.argv[2], 'w'))")
FAIL_ON_2 = "import sys; s = int(sys.argv[1]); print('loss is nan at step 7', file=sys.stderr); sys.exit(3 if s == 2 else 0)"


def write_spec(tmp_path: Path, rows: str, seeds: str = "[1, 2, 4]") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: exp\nseeds: {seeds}\nrows:\n" + textwrap.indent(textwrap.dedent(rows), "  "),
                    encoding="utf-8")
    return path


FAKE_ROW = """\
- name: fake
  kind: command
  metrics_file: r.json
  commands:
    - ["${python}", "-c", "%s", "${seed}", "${run}/r.json", "${out}/calls.txt"]
  published: {STS-B: 81.0, Avg.: 77.0}
  published_source: made-up numbers
""" % FAKE_EVAL.replace('"', '\\"')


def run_cli(*argv: str) -> int:
    return main(["experiment", *argv])


def test_finished_runs_are_skipped_and_unfinished_restarted(tmp_path, capsys):
    spec = write_spec(tmp_path, FAKE_ROW)
    out = tmp_path / "out"
    assert run_cli(str(spec), "--out", str(out), "--no-plot") == 0
    calls = out / "calls.txt"
    assert calls.read_text().split() == ["1", "2", "4"]
    for seed in (1, 2, 4):
        done = json.loads((out / "runs" / f"fake-s{seed}" / MARKER).read_text())
        assert done["seed"] == seed and done["row"] == "fake"
        assert "$ " in (out / "runs" / f"fake-s{seed}" / "log.txt").read_text()
    # a second call runs nothing; a run without its marker (interrupted) is cleared and run again
    stale = out / "runs" / "fake-s2"
    (stale / MARKER).unlink()
    (stale / "half-written.bin").write_bytes(b"x")
    assert run_cli(str(spec), "--out", str(out), "--no-plot") == 0
    assert calls.read_text().split() == ["1", "2", "4", "2"]
    assert not (stale / "half-written.bin").exists() and (stale / MARKER).is_file()
    assert "3 run(s), 2 finished earlier, 1 to run" in capsys.readouterr().out


def test_aggregate_mean_and_sample_std_of_fabricated_runs(tmp_path):
    """Fabricated results.json files of two rows (one seeded, one evaluated once); the table by hand."""
    spec_path = write_spec(tmp_path, """\
    - {name: raw, kind: eval, model: some-model}
    - name: unsup
      kind: train
      recipe: simcse-unsup-bert-base
      published: {STS-B: 80.0, SICK-R: 75.0, Avg.: 78.0}
      published_source: the paper, Table 5
    """, seeds="[42, 43, 44]")
    spec = load_spec(spec_path)
    out = tmp_path / "out"
    runs = plan_runs(spec, out)
    values = {None: (60.0, 50.0), 42: (80.0, 70.0), 43: (81.0, 73.0), 44: (83.0, 73.0)}
    for run in runs:
        b, s = values[run.seed]
        res = run.folder / "eval" / "results.json"
        res.parent.mkdir(parents=True)
        res.write_text(json.dumps({"results": {"STS-B": {"cosine_spearman": b}, "SICK-R": {"cosine_spearman": s}},
                                   "averages": {"sts": (b + s) / 2}}))
        if run.seed != 44:
            (run.folder / MARKER).write_text("{}")  # seed 44 unfinished: not aggregated
    payload = aggregate(spec, runs)
    assert payload["columns"] == ["STS-B", "SICK-R", "Avg."]
    raw, unsup = payload["rows"]
    assert raw == {"condition": "raw", "row": "raw", "kind": "eval", "n_seeds": 1, "seeds": [], "planned_runs": 1,
                   "tasks": {"STS-B": {"mean": 60.0, "std": None}, "SICK-R": {"mean": 50.0, "std": None},
                             "Avg.": {"mean": 55.0, "std": None}}}
    assert unsup["n_seeds"] == 2 and unsup["seeds"] == [42, 43] and unsup["planned_runs"] == 3
    assert unsup["tasks"]["STS-B"] == {"mean": 80.5, "std": pytest.approx(0.7071067811865476)}
    assert unsup["tasks"]["SICK-R"] == {"mean": 71.5, "std": pytest.approx(2.1213203435596424)}
    # Avg.: per-run averages 75 and 77 -> mean 76, sample std sqrt(2)
    assert unsup["tasks"]["Avg."] == {"mean": 76.0, "std": pytest.approx(2 ** 0.5)}
    assert unsup["measured_minus_published"] == {"STS-B": 0.5, "SICK-R": -3.5, "Avg.": -2.0}
    (runs[-1].folder / MARKER).write_text("{}")  # all three seeds
    unsup = aggregate(spec, runs)["rows"][1]
    assert unsup["tasks"]["STS-B"]["std"] == pytest.approx(statistics.stdev([80.0, 81.0, 83.0]))
    table = markdown(aggregate(spec, runs)).splitlines()
    assert table[0] == "| condition | n | STS-B | SICK-R | Avg. |"
    assert table[2] == "| raw | 1 | 60.00 | 50.00 | 55.00 |"
    assert table[3] == "| unsup | 3 | 81.33 ± 1.53 | 72.00 ± 1.73 | 76.67 ± 1.53 |"  # Avg.: runs 75, 77, 78
    assert "| unsup | +1.33 (80.00) | -3.00 (75.00) | -1.33 (78.00) |" in table
    assert "Published: the paper, Table 5" in table


def test_cli_writes_markdown_json_and_plot(tmp_path):
    spec = write_spec(tmp_path, FAKE_ROW)
    out = tmp_path / "out"
    assert run_cli(str(spec), "--out", str(out), "--seeds", "1", "3") == 0
    payload = json.loads((out / "aggregate.json").read_text())
    row = payload["rows"][0]
    assert row["condition"] == "fake" and row["n_seeds"] == 2 and row["seeds"] == [1, 3]
    assert row["tasks"]["SICK-R"] == {"mean": 74.0, "std": pytest.approx(statistics.stdev([72.0, 76.0]))}
    assert row["measured_minus_published"]["STS-B"] == pytest.approx(1.0)
    assert "| fake | 2 | 82.00 ± 1.41 | 74.00 ± 2.83 | 77.00 ± 1.41 |" in (out / "aggregate.md").read_text()
    assert (out / "aggregate.png").read_bytes()[:4] == b"\x89PNG"


def test_failed_run_fails_clearly_and_finished_runs_stay(tmp_path, capsys):
    spec = write_spec(tmp_path, FAKE_ROW + """\
- name: flaky
  kind: command
  metrics_file: r.json
  commands:
    - ["${python}", "-c", "%s", "${seed}", "${run}/r.json", "${out}/calls.txt"]
    - ["${python}", "-c", "%s", "${seed}"]
""" % (FAKE_EVAL.replace('"', '\\"'), FAIL_ON_2))
    out = tmp_path / "out"
    assert run_cli(str(spec), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "run flaky-s2 failed" in err and "exited with 3" in err
    assert str(out / "runs" / "flaky-s2" / "log.txt") in err
    assert "loss is nan at step 7" in err  # the log's last lines
    assert "Traceback" not in err
    for seed in (1, 2, 4):
        assert (out / "runs" / f"fake-s{seed}" / MARKER).is_file()
    assert not (out / "runs" / "flaky-s2" / MARKER).exists()
    assert (out / "runs" / "flaky-s1" / MARKER).is_file() and not (out / "runs" / "flaky-s4").exists()
    assert not (out / "aggregate.json").exists()


def test_dependencies_run_first_and_parallel_jobs(tmp_path):
    """${run:ROW} is ROW's run folder at the same seed, finished before the dependent run starts."""
    spec = write_spec(tmp_path, FAKE_ROW + """\
- name: copy
  kind: command
  metrics_file: r.json
  commands:
    - ["${python}", "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])", "${run:fake}/r.json", "${run}/r.json"]
""")
    out = tmp_path / "out"
    assert run_cli(str(spec), "--out", str(out), "--jobs", "3", "--threads", "1", "--no-plot") == 0
    rows = {r["condition"]: r for r in json.loads((out / "aggregate.json").read_text())["rows"]}
    assert rows["copy"]["tasks"] == rows["fake"]["tasks"]
    assert "fake-s4" in (out / "runs" / "copy-s4" / "log.txt").read_text()


def test_train_row_commands(tmp_path):
    """A train row: `capcse train` with the spec's and the row's --set, the seed, the thread budget, no final
    evaluation inside training; then `capcse eval` of the saved model with the row's pooler."""
    spec = load_spec(write_spec(tmp_path, """\
    - name: unsup
      kind: train
      recipe: simcse-unsup-bert-base
      set: {model.pooler: avg, multimodal.teachers: ["${run:raw}/x"]}
      eval: {pooler: cls_before_pooler, mode: dev}
    - {name: raw, kind: eval, model: m}
    """, seeds="[7]"))
    runs = plan_runs(spec, tmp_path / "o")
    assert [r.id for r in runs] == ["raw", "unsup-s7"]  # the dependency first
    train, ev = run_commands(runs[1], Context(tmp_path / "o", "/data", 3), runs)
    assert train[:6] == [sys.executable, "-m", "capcse", "train", "simcse-unsup-bert-base", "--output"]
    sets = [train[i + 1] for i, w in enumerate(train) if w == "--set"]
    assert sets == ["model.pooler=avg", f'multimodal.teachers=["{tmp_path}/o/runs/raw/x"]', "train.seed=7",
                    "train.torch_threads=3", "eval.final=[none]"]
    assert ev[3:5] == ["eval", str(tmp_path / "o" / "runs" / "unsup-s7" / "train" / "model")]
    assert ev[ev.index("--pooler") + 1] == "cls_before_pooler" and ev[ev.index("--mode") + 1] == "dev"
    assert select(spec, ["unsup"]).rows == spec.rows  # --only keeps what a row depends on


def test_models_from_evaluates_the_models_another_folder_trained(tmp_path):
    """--models-from DIR: a train row is not trained again; its run evaluates DIR/runs/<run>/train/model, and
    only if that model was trained with the same recipe (threads and bookkeeping aside)."""
    from capcse.experiment import ExperimentError
    from capcse.experiment.runner import train_overrides
    from capcse.train.recipe import dump_recipe, load_recipe

    spec = load_spec(write_spec(tmp_path, """\
    - {name: unsup, kind: train, recipe: simcse-unsup-bert-base, set: {model.pooler: avg}, eval: {mode: dev}}
    """, seeds="[7]"))
    other = tmp_path / "test-profile"
    runs = plan_runs(spec, tmp_path / "o")
    ctx = Context(tmp_path / "o", "/data", 2, other)
    with pytest.raises(ExperimentError, match="no trained model at .*unsup-s7/train/model"):
        run_commands(runs[0], ctx, runs)
    train = other / "runs" / "unsup-s7" / "train"
    (train / "model").mkdir(parents=True)
    (train / "model" / "config.json").write_text("{}")
    # trained there with 1 thread into its own folder, its features cached elsewhere: the same training
    theirs = Context(other, "/data", 1)
    saved = load_recipe("simcse-unsup-bert-base", train_overrides(runs[0], theirs, {})
                        + [f"train.output_dir={train}", f"multimodal.feature_cache={other}/work/cache"])
    (train / "recipe.yaml").write_text(dump_recipe(saved))
    (ev,) = run_commands(runs[0], ctx, runs)
    assert ev[3:5] == ["eval", str(train / "model")] and ev[ev.index("--mode") + 1] == "dev"
    assert ev[ev.index("--output") + 1] == str(tmp_path / "o" / "runs" / "unsup-s7" / "eval")
    # a model trained differently is refused, naming the difference
    other_lr = load_recipe(train / "recipe.yaml", ["train.learning_rate=0.5"])
    (train / "recipe.yaml").write_text(dump_recipe(other_lr))
    with pytest.raises(ExperimentError, match=r"different recipe \(train.learning_rate: 0.5 there, 3e-05 here\)"):
        run_commands(runs[0], ctx, runs)


@pytest.mark.parametrize("bad, message", [
    ("- {name: a, kind: train}", "a train row needs a recipe"),
    ("- {name: a, kind: eval, model: m, lr: 1}", "unknown key(s) for a eval row: lr"),
    ("- {name: a, kind: eval, model: '${nope}'}", "unknown variable ${nope}"),
    ("- {name: a, kind: eval, model: m}\n- {name: a, kind: eval, model: n}", "row names repeat: a"),
])
def test_bad_spec_is_one_line_error(tmp_path, capsys, bad, message):
    assert run_cli(str(write_spec(tmp_path, bad + "\n")), "--dry-run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(tmp_path / "exp.yaml") in err[0]


SPECS = sorted(experiments_dir().glob("*.yaml"))


def _profiles(path: Path) -> list[str | None]:
    import yaml

    return [None] + list((yaml.safe_load(path.read_text()) or {}).get("profiles") or {})


@pytest.mark.parametrize("path, profile", [(p, prof) for p in SPECS for prof in _profiles(p)],
                         ids=lambda v: v.stem if isinstance(v, Path) else str(v))
def test_every_committed_spec_resolves_in_a_dry_run(path, profile, tmp_path, capsys, data_dir):
    argv = [path.stem, "--dry-run", "--out", str(tmp_path / "o"), "--data-dir", str(data_dir)]
    assert run_cli(*argv + (["--profile", profile] if profile else [])) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"plan: {path.stem}") and " ERROR" not in out
    spec = load_spec(path, profile)
    assert f"= {len(plan_runs(spec, tmp_path / 'o'))} run(s)" in out.splitlines()[0]
    from capcse.models.registry import packaged_path, ALIASES

    for alias in ("capcse-bert-mini-en", "capcse-bert-mini-ko"):
        if alias in path.read_text() and profile == "cpu" and packaged_path(ALIASES[alias]) is None:
            assert f"missing: model {alias}: model {alias!r} ships with the capcse repository" in out
