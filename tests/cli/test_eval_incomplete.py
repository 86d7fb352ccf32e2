"""Issue 16, item 5: `capcse eval` on an STS copy with missing pairs warns loudly, says what is missing, and
records it in results.json (it used to report a score on 1,369 of STS-B's 1,379 test pairs silently)."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from capcse.cli import main
from capcse.data.loaders import load_sts
from capcse.data.sts import IncompleteDataWarning


@pytest.fixture
def short_stsb(tmp_path, data_dir):
    """A copy of SentEval's STS-B with the last 10 test pairs cut off."""
    src = data_dir / "downstream" / "STS" / "STSBenchmark"
    if not (src / "sts-test.csv").is_file():
        pytest.skip(f"no STS-B copy at {src}")
    dst = tmp_path / "data" / "downstream" / "STS" / "STSBenchmark"
    shutil.copytree(src, dst)
    lines = (src / "sts-test.csv").read_bytes().splitlines(keepends=True)
    assert len(lines) == 1379
    (dst / "sts-test.csv").write_bytes(b"".join(lines[:-10]))
    return tmp_path / "data", dst / "sts-test.csv"


def test_loading_a_short_copy_warns_with_the_counts(short_stsb):
    root, test_file = short_stsb
    with pytest.warns(IncompleteDataWarning) as caught:
        data = load_sts("stsb", "test", data_dir=root)
    assert len(data["stsb"]) == 1369
    assert str(caught[0].message) == (f"stsb test: this copy has 1369 of the release's 1379 pairs (10 missing) in "
                                      f"{test_file}; its scores are not the published task's (see capcse data list)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteDataWarning)
        assert len(load_sts("stsb", "dev", data_dir=root)["stsb"]) == 1500  # a complete split: no warning


def test_eval_cli_repeats_the_warning_under_the_table_and_records_it(short_stsb, tiny_bert_path, tmp_path, capsys):
    root, _ = short_stsb
    out = tmp_path / "report"
    assert main(["eval", str(tiny_bert_path), "--tasks", "stsb", "--data-dir", str(root), "--output", str(out),
                 "--no-plots", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1].startswith(
        "WARNING: incomplete data: stsb test: this copy has 1369 of the release's 1379 pairs (10 missing)")
    payload = json.loads((out / "results.json").read_text())
    assert payload["results"]["STS-B"]["n_pairs"] == 1369
    assert payload["settings"]["incomplete_data"][0].startswith("stsb test: this copy has 1369 of")
