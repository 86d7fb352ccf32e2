"""`capcse eval` end to end."""

from __future__ import annotations

import json

import pytest

from capcse.cli import main


def test_bad_task_is_one_clear_error(capsys, tmp_path):
    assert main(["eval", "all-MiniLM-L6-v2", "--tasks", "sts99", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'sts99'" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_dev_mode_rejects_test_only_sets(capsys, tmp_path, data_dir):
    assert main(["eval", "all-MiniLM-L6-v2", "--tasks", "sts12", "--mode", "dev", "--data-dir", str(data_dir),
                 "--output", str(tmp_path)]) == 2
    assert "test set only" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_sickr_dev_with_the_real_model(capsys, tmp_path, data_dir, minilm_path):
    out = tmp_path / "report"
    code = main(["eval", "all-MiniLM-L6-v2", "--tasks", "sickr", "--mode", "dev", "--data-dir", str(data_dir),
                 "--output", str(out), "--variant", "raw", "--batch-size", "64", "--dtype", "fp32"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "SICK-R" in printed and "Avg." in printed
    payload = json.loads((out / "results.json").read_text())
    sick = payload["results"]["SICK-R"]
    assert sick["split"] == "dev" and sick["n_pairs"] == 500
    assert 60 < sick["cosine_spearman"] < 95  # a sane score for all-MiniLM-L6-v2 (SICK-R dev)
    assert payload["avg"] == pytest.approx(sick["cosine_spearman"])
    assert payload["settings"]["dtype"] == "fp32" and payload["variant"] == "raw"
    for name in ("results.md", "report.html", "plots/sts_bars.png"):
        assert (out / name).is_file()


def test_max_length_sets_the_inference_length(capsys, tmp_path, data_dir, tiny_bert_path):
    """--max-length N cuts every sentence at N tokens, and the report says so; scores change when sentences
    are cut (the same model evaluated two ways)."""
    scores = {}
    for n in (None, 4):
        out = tmp_path / f"r{n}"
        argv = ["eval", str(tiny_bert_path), "--tasks", "sickr", "--mode", "dev", "--data-dir", str(data_dir),
                "--output", str(out), "--no-plots"] + (["--max-length", str(n)] if n else [])
        assert main(argv) == 0
        payload = json.loads((out / "results.json").read_text())
        assert payload["settings"]["max_seq_length"] == (n or 128)
        scores[n] = payload["results"]["SICK-R"]["cosine_spearman"]
    assert scores[None] != scores[4]
