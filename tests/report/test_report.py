"""Report artefacts: JSON, markdown, console tables, PNG plots, self-contained HTML."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from capcse.data import STSData, TransferData
from capcse.evaluation import run_evaluation
from capcse.report import console_report, markdown_report, write_report
from capcse.report.tables import render_box, render_markdown, sts_table

PNG = b"\x89PNG\r\n\x1a\n"


def seeded_encode(sentences):
    """A deterministic 'encoder': a Gaussian vector seeded by the sentence text."""
    return np.stack([np.random.default_rng(zlib.crc32(s.encode())).normal(size=16) for s in sentences])




def _pairs(name, n, seed):
    rng = np.random.default_rng(seed)
    s1 = [f"{name} left {i}" for i in range(n)]
    s2 = [f"{name} right {i}" for i in range(n)]
    e1, e2 = seeded_encode(s1), seeded_encode(s2)
    cos = (e1 * e2).sum(1) / np.linalg.norm(e1, axis=1) / np.linalg.norm(e2, axis=1)
    gold = np.clip(2.5 + 2.5 * cos + rng.normal(0, 0.3, n), 0, 5)  # correlated with the encoder
    return STSData(name, s1, s2, gold, source="memory")


@pytest.fixture(scope="module")
def result():
    datasets = {
        "sts12": ("test", {"MSRpar": _pairs("a", 30, 0), "MSRvid": _pairs("b", 20, 1)}),
        "stsb": ("test", {"stsb": _pairs("c", 60, 2)}),
        "mr": TransferData("mr", 2, {"all": ([f"s{i}" for i in range(30)], np.arange(30) % 2)}, False),
    }
    return run_evaluation(seeded_encode, "sts12,stsb,mr", datasets=datasets, name="seeded", fast=True, n_jobs=1)


def test_write_report_creates_every_artefact(result, tmp_path):
    written = write_report(result, tmp_path / "out")
    out = tmp_path / "out"
    for name in ("results.json", "results.md", "report.html", "plots/sts_bars.png", "plots/transfer_bars.png",
                 "plots/stsb_scatter.png"):
        assert (out / name).is_file(), name
    for p in (out / "plots").iterdir():
        assert p.read_bytes()[:8] == PNG
    assert not [p for p in out.rglob("*.tmp")]  # atomic writes leave no temporaries
    payload = json.loads((out / "results.json").read_text())
    assert payload["model"] == "seeded" and set(payload["results"]) == {"STS12", "STS-B", "MR"}
    assert payload["results"]["STS-B"]["cosine_spearman"] == pytest.approx(result.sts.tasks["stsb"].spearman)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3  # plots embedded: the page stands alone
    assert "href='plots/stsb_scatter.png'" in html and "href='results.json'" in html
    assert "STS-B" in html and "MR" in html
    md = (out / "results.md").read_text()
    assert "| STS12 | STS-B | Avg. |" in md and f"{payload['averages']['sts']:.2f}" in md
    assert set(written) >= {"json", "markdown", "html", "plot:sts_bars", "plot:stsb_scatter", "plot:transfer_bars"}


def test_console_and_markdown_tables(result):
    payload = result.to_dict()
    text = console_report(payload)
    sts = result.sts
    assert f"{sts.tasks['sts12'].spearman:.2f}" in text and "Avg." in text and "MR" in text
    md = markdown_report(payload)
    assert "8-correlation table" in md and "MSRvid" in md and "wmean" in md


def test_box_and_markdown_rendering():
    table = ("T", ["STS12", "Avg."], [["72.37", "72.37"]])
    assert render_box(table) == ("T\n+-------+-------+\n| STS12 |  Avg. |\n+-------+-------+\n"
                                 "| 72.37 | 72.37 |\n+-------+-------+")
    assert render_markdown(table).splitlines()[2:] == ["| STS12 | Avg. |", "|---:|---:|", "| 72.37 | 72.37 |"]
    payload = {"results": {"STS-B": {"cosine_spearman": 80.0, "split": "dev"},
                           "SICK-R": {"cosine_spearman": 70.0, "split": "dev"}}, "averages": {"sts": 75.0}}
    title, header, rows = sts_table(payload)
    assert header == ["STS-B", "SICK-R", "Avg."] and rows == [["80.00", "70.00", "75.00"]] and "dev" in title


def test_nan_becomes_null_in_json(tmp_path):
    payload = {"model": "m", "results": {"STS-B": {"cosine_spearman": float("nan"), "split": "test"}},
               "averages": {}, "mode": "test"}
    write_report(payload, tmp_path, plots=False)
    assert json.loads((tmp_path / "results.json").read_text())["results"]["STS-B"]["cosine_spearman"] is None
