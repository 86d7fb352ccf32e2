"""capcse report compare: the before/after table, its deltas, the files, the CLI and its errors."""

import json

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
