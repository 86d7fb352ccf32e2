"""`capcse data list` / `capcse data get` through capcse.cli.main."""

from __future__ import annotations

import json
import shutil

import pytest

from capcse.cli import main

pytestmark = pytest.mark.usefixtures("isolated_data_env")


def test_data_list_table(data_dir, capsys):
    assert main(["data", "list", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"data roots searched: {data_dir}")
    header = lines[1].split()
    assert header[:5] == ["name", "variant", "found", "status", "counts"]
    table = lines[3:lines.index("")]  # rows end at the blank line before the notes
    row = {line.split()[0] + "/" + line.split()[1]: line for line in table}
    assert len(row) == 29
    assert row["stsb/raw"].split()[2:4] == ["yes", "ok"]
    assert "train 5,749/5,749, dev 1,500/1,500, test 1,379/1,379" in row["stsb/raw"]
    assert row["stsb/raw"].endswith(str(data_dir / "sts_raw/stsbenchmark"))
    assert row["wiki1m/prefix"].split()[2:4] == ["yes", "prefix"] and "lines 11,914/11,914" in row["wiki1m/prefix"]
    assert row["wiki1m/full"].split()[2:4] == ["no", "missing"]
    assert "wiki1m (prefix): only the first 11,914 of 1,000,000 lines" in out
    assert "27 of 29 data set variants found; 0 found with problems" in out


def test_data_list_json_and_mismatch(data_dir, tmp_path, capsys):
    shutil.copytree(data_dir / "korsts", tmp_path / "korsts")
    (tmp_path / "korsts/sts-test.tsv").write_text("genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n")
    assert main(["data", "list", "--data-dir", str(tmp_path), "--json"]) == 1  # a found set has problems
    rows = json.loads(capsys.readouterr().out)
    korsts = next(r for r in rows if r["name"] == "korsts")
    assert korsts["status"] == "mismatch" and korsts["counts"]["test"] == 0 and korsts["expected"]["test"] == 1379


def test_data_get(data_dir, tmp_path, capsys):
    assert main(["data", "get", "stsb", "--variant", "raw", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(data_dir / "sts_raw/stsbenchmark")
    assert main(["data", "get", "korsts", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capcse data: error: data set korsts not found.")
    assert f"{tmp_path}/korsts (not there)" in err and "Traceback" not in err
