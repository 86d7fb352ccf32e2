"""The README and docs say what the code does (issue 16, item 11)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_snippet_prints_the_sts_table(tmp_path, monkeypatch, capsys, minilm_path):
    """Run the README's Python block (on a 40-pair in-memory STS-B instead of the whole suite)."""
    import capcse.evaluation.suite as suite
    from capcse.data import STSData

    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    rng = np.random.default_rng(0)
    s1 = [f"a man is playing instrument number {i}" for i in range(40)]
    s2 = [f"someone plays music on instrument {i if i % 3 else i + 1}" for i in range(40)]
    small = STSData("stsb", s1, s2, rng.uniform(0, 5, 40), source="memory")
    original = suite.run_evaluation
    monkeypatch.setattr(suite, "run_evaluation", lambda enc, tasks, mode, **kw: original(
        enc, "stsb", mode, datasets={"stsb": ("test", {"stsb": small})}, **kw))
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^\| STS-B \|\s+Avg\. \|$", out, re.M)               # a table, not a dict
    assert re.search(r"^\|\s+-?\d+\.\d\d \|\s+-?\d+\.\d\d \|$", out, re.M) and "STS avg: " in out
    assert "{" not in out
    assert (tmp_path / "outputs" / "eval" / "report.html").is_file()


def test_readme_says_where_make_and_capcse_find_the_data():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "../shared/data" in makefile and "CAPCSE_DATA" in makefile    # what the README describes
    section = README.split("**Where the data comes from.**", 1)[1].split("## ", 1)[0]
    for said in ("`make main` and `make test` look for `../shared/data`", "export CAPCSE_DATA=", "--data-dir",
                 "HF_HUB_OFFLINE=1"):
        assert said in section


def test_every_command_of_the_readme_table_is_described_in_its_linked_doc():
    cell = r"(?:[^|\\]|\\.)*"   # a table cell; `\|` inside code is an escaped bar
    rows = re.findall(rf"^\| `capcse (\w+){cell}\|{cell}\| \[([^\]]+)\]\(([^)]+)\) \|$", README, re.M)
    assert {r[0] for r in rows} >= {"caption", "pipeline", "train", "eval", "report", "link", "data", "triplets"}
    for command, _, link in rows:
        doc = (ROOT / link).read_text(encoding="utf-8")
        assert f"capcse {command}" in doc, (command, link)
    captions = (ROOT / "docs" / "captions.md").read_text(encoding="utf-8")
    section = captions.split("## `capcse pipeline`", 1)[1]
    for step in ("captions/", "filtered/", "stats/", "train/", "report.md", "caption-simcse-pipeline-human"):
        assert step in section


def test_training_docs_first_example_says_it_trains_the_cls_token():
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert "[CLS]" in first and "mean pooling" in first and "--set model.pooler=avg" in first
