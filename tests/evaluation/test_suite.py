"""Task selection and the JSON contract of a whole evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capcse.errors import ConfigError
from capcse.data import TransferData
from capcse.evaluation import CORRELATION_KEYS, resolve_tasks, run_evaluation
from capcse.evaluation.transfer import ProbeConfig


def test_resolve_tasks():
    assert resolve_tasks("sts") == ["sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"]
    assert resolve_tasks("sts", "dev") == ["stsb", "sickr"]
    assert resolve_tasks("transfer") == ["mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc"]
    assert resolve_tasks("mrpc, STS-B,korsts") == ["stsb", "korsts", "mrpc"]  # canonical order
    assert len(resolve_tasks("all")) == 15 and resolve_tasks(["sickr", "sickr"]) == ["sickr"]
    with pytest.raises(ConfigError, match="unknown task"):
        resolve_tasks("sts17")
    with pytest.raises(ConfigError):
        resolve_tasks("sts", "train")
    with pytest.raises(ConfigError, match="test set only"):
        resolve_tasks("stsb,sts13", "dev")


def _stsb_like(Pairs, rng, n, name):
    words = [f"w{i}" for i in range(25)]
    s1, s2, gold = [], [], []
    for _ in range(n):
        a = list(rng.choice(words, 5))
        b = a[: rng.integers(0, 6)] + list(rng.choice(words, 2))
        s1.append(" ".join(a))
        s2.append(" ".join(b))
        gold.append(min(5.0, 5 * len(set(a) & set(b)) / 5))
    return Pairs(name, s1, s2, np.array(gold))


def test_json_contract(bow, toy_sts, pairs_type):
    rng = np.random.default_rng(1)
    datasets = {"sts12": ("test", toy_sts), "stsb": ("test", {"stsb": _stsb_like(pairs_type, rng, 50, "stsb")})}
    res = run_evaluation(bow, "sts12,stsb", datasets=datasets, name="bow")
    payload = json.loads(json.dumps(res.to_dict()))  # JSON-serialisable as is
    assert payload["model"] == "bow" and payload["mode"] == "test"
    assert set(payload["results"]) == {"STS12", "STS-B"}
    for name, r in payload["results"].items():
        for k in CORRELATION_KEYS:
            assert isinstance(r[k], float)
        for agg in ("all", "wmean", "mean"):
            assert set(CORRELATION_KEYS) <= set(r[agg])
        assert isinstance(r["n_pairs"], int) and isinstance(r["subsets"], dict)
    assert set(payload["results"]["STS12"]["subsets"]) == {"A", "B"}
    expect_avg = np.mean([payload["results"][k]["cosine_spearman"] for k in ("STS12", "STS-B")])
    assert payload["avg"] == pytest.approx(expect_avg) and payload["averages"]["sts"] == payload["avg"]
    au = payload["alignment_uniformity"]
    assert au["split"] == "test" and au["threshold"] == 4.0 and au["alignment"] >= 0 and au["uniformity"] <= 0
    assert payload["timing"]["sts_unique_sentences"] <= payload["timing"]["sts_sentences"]
    assert {"settings", "created", "capcse_version", "tasks", "variant"} <= set(payload)


def test_transfer_in_the_payload(bow):

    items = [f"x{i % 7} {'good' if i % 2 else 'bad'}" for i in range(40)]
    data = {"cr": TransferData("cr", 2, {"all": (items, np.arange(40) % 2)}, False)}
    res = run_evaluation(lambda s: bow(s, dim=256), "cr", datasets=data, name="bow", n_jobs=1, fast=True)
    payload = res.to_dict()
    cr = payload["results"]["CR"]
    assert cr["acc"] == 100.0 and isinstance(cr["devacc"], float) and len(cr["fold_acc"]) == 5
    assert payload["avg"] == payload["averages"]["transfer"] == 100.0
    assert payload["settings"]["probe"]["kfold"] == ProbeConfig.senteval(fast=True).kfold == 5


def test_reports_state_the_inference_length(bow, toy_sts, tmp_path):
    """Issue 13 §1: the JSON payload and the markdown report say at what length sentences were cut
    (the encoder's max_seq_length); a bare function reports none, and the markdown says so."""
    from capcse.report.tables import markdown_report

    class Encoder:
        max_seq_length = 77

        def encode(self, sentences):
            return bow(sentences)

    res = run_evaluation(Encoder(), "sts12", datasets={"sts12": ("test", toy_sts)}, name="bow")
    payload = json.loads(json.dumps(res.to_dict()))
    assert payload["settings"]["max_seq_length"] == 77
    assert "inference length: sentences truncated at 77 tokens" in markdown_report(payload)
    bare = run_evaluation(bow, "sts12", datasets={"sts12": ("test", toy_sts)}, name="bow").to_dict()
    assert bare["settings"]["max_seq_length"] is None
    assert "inference length: not reported by the model" in markdown_report(bare)
