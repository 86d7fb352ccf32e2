"""capcse report compare: the before/after table, its deltas, the files, the CLI and its errors."""

import json
import re

import pytest

from capcse.cli import main
from capcse.errors import CapcseError
from capcse.report.compare import compare_markdown, compare_runs


def _payload(model, sts12, stsb, avg):
    return {"model": model, "results": {"STS12": {"cosine_spearman": sts12}, "STS-B": {"cosine_spearman": stsb}},
            "averages": {"sts": avg}, "avg": avg}


def test_markdown_deltas_against_the_first_run():
    md = compare_markdown({"before": _payload("a", 70.0, 80.0, 75.0), "after": _payload("b", 72.5, 79.0, 75.75)})
    assert "| run | STS12 | STS-B | Avg. |" in md
    assert "| before | 70.00 | 80.00 | 75.00 |" in md
    assert "| after | 72.50 (+2.50) | 79.00 (-1.00) | 75.75 (+0.75) |" in md


def test_files_and_cli(tmp_path, capsys):
    for name, p in (("a", _payload("a", 70.0, 80.0, 75.0)), ("b", _payload("b", 71.0, 81.0, 76.0))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(p))
    written = compare_runs({"before": tmp_path / "a", "after": tmp_path / "b" / "results.json"}, tmp_path / "out")
    assert {"json", "markdown", "png", "html"} <= set(written)
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 1000
    assert "before vs after" in (tmp_path / "out" / "report.html").read_text()
    assert main(["report", "compare", f"x={tmp_path / 'a'}", f"y={tmp_path / 'b'}", "--output",
                 str(tmp_path / "out2")]) == 0
    assert "| y | 71.00 (+1.00)" in capsys.readouterr().out


def test_errors(tmp_path, capsys):
    with pytest.raises(CapcseError, match="at least two"):
        compare_runs({"a": tmp_path}, tmp_path / "o")
    (tmp_path / "bad.json").write_text("{\n oops")
    with pytest.raises(CapcseError, match="bad.json:2"):
        compare_runs({"a": tmp_path / "bad.json", "b": tmp_path / "bad.json"}, tmp_path / "o")
    assert main(["report", "compare", "noequals", "b=x", "--output", str(tmp_path / "o")]) == 2
    assert "LABEL=RESULTS" in capsys.readouterr().err


def _run(tmp_path, name, mode="test", tasks=("STS12", "STS-B"), **extra):
    results = {t: {"cosine_spearman": 70.0 + i, "split": mode} for i, t in enumerate(tasks)}
    payload = {"model": name, "mode": mode, "variant": "senteval", "tasks": [t.lower() for t in tasks],
               "results": results, "averages": {"sts": 70.0 + (len(tasks) - 1) / 2}, **extra}
    (tmp_path / name).mkdir()
    (tmp_path / name / "results.json").write_text(json.dumps(payload))
    return tmp_path / name


@pytest.mark.parametrize("b_kwargs, message", [
    ({"mode": "dev"}, "modes differ: a test; b dev"),
    ({"tasks": ("STS-B",)}, "task sets differ: a 2 task(s) (STS-B, STS12); b 1 task(s) (STS-B)"),
    ({"settings": {"max_seq_length": 32}}, "inference lengths differ: a 256 tokens; b 32 tokens"),
])
def test_mismatched_runs_are_refused_or_marked(tmp_path, capsys, b_kwargs, message):
    a = _run(tmp_path, "a", settings={"max_seq_length": 256})
    b = _run(tmp_path, "b", **{"settings": {"max_seq_length": 256}, **b_kwargs})
    with pytest.raises(CapcseError, match=re.escape(message)):
        compare_runs({"a": a, "b": b}, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    argv = ["report", "compare", f"a={a}", f"b={b}", "--output", str(tmp_path / "cli")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("capcse report: error: the runs were evaluated differently: ")
    assert main(argv + ["--allow-mismatch"]) == 0
    captured = capsys.readouterr()
    assert f"warning: NOT COMPARABLE: {message}" in captured.err
    assert "**NOT COMPARABLE**" in captured.out and f"- {message}" in captured.out
    saved = json.loads((tmp_path / "cli" / "comparison.json").read_text())
    assert saved["mismatches"] == [message]
    assert "NOT COMPARABLE" in (tmp_path / "cli" / "report.html").read_text()


def test_same_setup_compares_and_an_unknown_length_is_noted(tmp_path, capsys):
    a, b = _run(tmp_path, "a", settings={"max_seq_length": 128}), _run(tmp_path, "b")
    compare_runs({"a": a, "b": b}, tmp_path / "o")
    saved = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert saved["mismatches"] == [] and saved["notes"] == ["inference length not recorded for b"]
    assert saved["runs"]["a"]["inference_length"] == 128 and saved["runs"]["b"]["inference_length"] is None
    md = (tmp_path / "o" / "comparison.md").read_text()
    assert "NOT COMPARABLE" not in md and "Note: inference length not recorded for b." in md


def test_each_runs_training_record_is_read_once(tmp_path, monkeypatch):
    """The dev-curve figure and the page share one training_run_of per run (it reads train_summary.json and
    recipe.yaml)."""
    import capcse.report.html as html_module

    calls = []
    real = html_module.training_run_of
    monkeypatch.setattr(html_module, "training_run_of", lambda path: calls.append(path) or real(path))
    a, b = _run(tmp_path, "a", settings={"max_seq_length": 128}), _run(tmp_path, "b", settings={"max_seq_length": 128})
    compare_runs({"a": a, "b": b}, tmp_path / "o")
    assert sorted(calls) == [a / "results.json", b / "results.json"]
