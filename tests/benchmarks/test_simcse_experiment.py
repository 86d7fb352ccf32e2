"""benchmarks/simcse_experiment.py: the SNLI triplet file, the training commands, mean ± std."""

from __future__ import annotations

import argparse
import csv
import statistics

import pytest



@pytest.fixture(scope="module")
def ex(load_benchmark):
    return load_benchmark("simcse_experiment")


def test_snli_triplets_pool_dev_and_test(ex, data_dir, tmp_path):
    """One header, then the dev triplets and the test triplets, each built by `capcse triplets`."""
    path = ex.snli_triplets(str(data_dir), tmp_path, log=lambda _m: None)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    parts = [list(csv.reader((tmp_path / f"snli_{s}_triplets.csv").open(encoding="utf-8"))) for s in ("dev", "test")]
    assert rows[0] == ["sent0", "sent1", "hard_neg"] == parts[0][0] == parts[1][0]
    assert rows[1:] == parts[0][1:] + parts[1][1:]
    assert len(parts[0]) > 1 and len(parts[1]) > 1
    assert ex.snli_triplets(str(data_dir), tmp_path, log=lambda _m: None) == path  # reused, not rebuilt


def test_train_command_settings(ex, tmp_path):
    args = argparse.Namespace(model="all-MiniLM-L6-v2", max_length=32, batch_size=64, steps=100, threads=2,
                              data_dir="/data")
    cmd = ex.train_command(ex.CONDITIONS["unsup-wiki-cls"], "wiki.txt", 43, args, tmp_path)
    sets = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--set")
    assert cmd[cmd.index("train") + 1] == "simcse-unsup-bert-base"
    assert sets["model.pooler"] == "cls" and sets["model.mlp_only_train"] == "true"
    assert sets["train.max_steps"] == "100" and sets["train.seed"] == "43" and sets["data.train"] == "wiki.txt"
    assert sets["train.precision"] == "bf16" and sets["train.group_by_length"] == "true"
    fp32 = ex.train_command(ex.CONDITIONS["unsup-flickr-fp32"], "flickr30k-captions", 42, args, tmp_path)
    sets = dict(fp32[i + 1].split("=", 1) for i, a in enumerate(fp32) if a == "--set")
    assert sets["train.precision"] == "fp32" and sets["train.group_by_length"] == "false"
    assert sets["model.pooler"] == "avg" and sets["model.mlp_only_train"] == "false"


def test_summary_mean_and_sample_std(ex):
    runs = [{"condition": "unsup-wiki", "sts": {"STS-B": v, "Avg.": v - 1}} for v in (80.0, 81.0, 83.0)]
    runs.append({"condition": "untrained", "sts": {"STS-B": 82.0, "Avg.": 78.0}})
    summary = ex.summarise(runs)
    assert list(summary) == ["untrained", "unsup-wiki"]  # CONDITIONS order
    assert summary["unsup-wiki"]["STS-B"]["mean"] == pytest.approx(81.3333333333)
    assert summary["unsup-wiki"]["STS-B"]["std"] == pytest.approx(statistics.stdev([80.0, 81.0, 83.0]))
    assert summary["untrained"]["Avg."] == {"mean": 78.0, "std": 0.0, "n": 1}
    table = ex.markdown_table(summary).splitlines()
    assert table[2] == "| untrained | 82.00 | 78.00 |"
    assert table[3] == "| unsup-wiki | 81.33 ± 1.53 | 80.33 ± 1.53 |"
