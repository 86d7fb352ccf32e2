"""The comparison report (issue 16, item 9): real tables, links relative to the report's folder, honest
axes with values, the runs' settings, the dev curve, alignment/uniformity; checked in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from capcse.report.compare import compare_runs
from capcse.report.tables import STS_COLUMNS

BEFORE = [72.0, 80.0, 75.0, 85.0, 79.0, 82.0, 78.0]
AFTER = [74.5, 81.0, 76.0, 84.0, 80.5, 83.0, 79.5]


def _payload(model, scores, mode="test", au=None, max_length=None):
    p = {"model": model, "mode": mode, "variant": "senteval", "tasks": ["sts12", "stsb"],
         "results": {c: {"cosine_spearman": v, "split": "test"} for c, v in zip(STS_COLUMNS, scores)},
         "averages": {"sts": float(np.mean(scores))}, "settings": {"seed": 1111, "max_seq_length": max_length},
         "capcse_version": "0.test", "created": "2025-01-01T00:00:00+00:00"}
    if au:
        p["alignment_uniformity"] = {"alignment": au[0], "uniformity": au[1], "threshold": 4.0,
                                     "n_positive_pairs": 57, "n_sentences": 300, "split": "test"}
    return p


@pytest.fixture
def runs(tmp_path):
    """outputs/before (a plain eval) and outputs/train (a training run with its eval/ folder)."""
    root = tmp_path / "outputs"
    (root / "before").mkdir(parents=True)
    (root / "before" / "results.json").write_text(json.dumps(_payload("all-MiniLM-L6-v2", BEFORE, au=(0.21, -2.9),
                                                                      max_length=256)))
    (root / "before" / "report.html").write_text("<html></html>")
    train = root / "train"
    (train / "eval").mkdir(parents=True)
    (train / "model").mkdir()
    (train / "eval" / "results.json").write_text(json.dumps(_payload("caption-simcse", AFTER, au=(0.25, -3.4))))
    (train / "recipe.yaml").write_text(
        "name: caption-simcse\nmodel: {name: all-MiniLM-L6-v2, pooler: avg, max_length: 32}\n"
        "data: {train: flickr30k-captions, limit: null}\nloss: {name: simcse, temperature: 0.05}\n"
        "train: {batch_size: 64, learning_rate: 3.0e-05, seed: 42, precision: bf16}\n")
    (train / "model" / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    (train / "train_summary.json").write_text(json.dumps({
        "steps": 30, "train_examples": 145000, "train_seconds": 61.2,
        "best_dev": {"steps": 20, "spearman": 84.3},
        "dev_history": [{"steps": 10, "spearman": 83.1}, {"steps": 20, "spearman": 84.3},
                        {"steps": 30, "spearman": 84.0}],
        "losses": [{"step": 10, "loss": 1.2}, {"step": 20, "loss": 0.9}, {"step": 30, "loss": 0.8}]}))
    return root


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "a":
            self.hrefs.append(a["href"])
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def _report(runs, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(runs)           # run paths relative to the working directory, as `make main` gives them
    compare_runs({"before": "before", "after": "train/eval"}, tmp_path / "site" / "report")
    return tmp_path / "site" / "report"


def test_compare_report_has_tables_settings_and_working_links(runs, tmp_path, monkeypatch):
    out = _report(runs, tmp_path, monkeypatch)
    page = _Page()
    page_text = (out / "report.html").read_text()
    page.feed(page_text)
    assert "pre" not in page.tags and page.tags.count("table") == 3  # settings, STS, alignment/uniformity
    cells = page.cells
    # the STS table: a row per run, every task, the difference to the first run
    i = cells.index("run")
    assert cells[i:i + 9] == ["run", *STS_COLUMNS, "Avg."] and cells[i + 9] == "before" and cells[i + 18] == "after"
    i += 18
    assert cells[i + 1] == "74.50+2.50" and cells[i + 4] == "84.00-1.00"
    assert cells[i + 8] == f"{np.mean(AFTER):.2f}{np.mean(AFTER) - np.mean(BEFORE):+.2f}"
    # the runs' settings: model, data, steps, inference length, seeds, best dev step
    row = {cells[k]: cells[k + 1:k + 3] for k in range(len(cells) - 2)}
    assert row["inference length (tokens)"] == ["256", "32"]
    assert row["evaluation seed"] == ["1111", "1111"]
    assert row["training data"][1] == "flickr30k-captions, 145,000 examples"
    assert row["steps"][1] == "30 x batch 64, lr 3e-05, bf16" and row["training seed"][1] == "42"
    assert "the saved weights are those of step 20" in page_text
    assert row["best dev"][1] == "84.30 at step 20" and row["base model"][1] == "all-MiniLM-L6-v2 (pooler avg)"
    i = cells.index("l_align")
    assert cells[i + 5:i + 8] == ["before", "0.2100", "-2.9000"]
    # every link resolves from the report's own folder (the working directory is elsewhere)
    monkeypatch.chdir(tmp_path)
    assert len(page.hrefs) >= 10
    for href in page.hrefs:
        assert not href.startswith("/") and (out / href).exists(), href
    assert "../../outputs/train/eval/results.json" in page.hrefs and "../../outputs/train" in page.hrefs
    for png in ("comparison.png", "dev_curve.png", "alignment_uniformity.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_compare_bar_axis_starts_at_zero_with_value_labels(tmp_path):
    from matplotlib.testing.decorators import _cleanup_cm  # noqa: F401  (matplotlib present)

    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from capcse.report import plots

    captured = {}
    real_save = plots._save

    def keep(fig, path):
        ax = fig.axes[0]
        captured["ylim"] = ax.get_ylim()
        captured["texts"] = [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        fig.canvas.draw()
        lb = legend.get_window_extent()
        captured["legend_overlaps"] = [b for b in ax.patches if b.get_window_extent().overlaps(lb)]
        return real_save(fig, path)

    plots._save = keep
    try:
        plots.grouped_bar_plot(["STS12", "Avg."], {"before": [62.5, 70.0], "after": [64.0, None]},
                               tmp_path / "b.png", title="t", ylabel="y")
    finally:
        plots._save = real_save
        plt.close("all")
    assert captured["ylim"][0] == 0.0 and captured["ylim"][1] >= 100.0
    assert captured["texts"] == ["62.5", "70.0", "64.0", "n/a"]
    assert captured["legend_overlaps"] == []


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHECK = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => i.naturalWidth);
  const tables = [...document.querySelectorAll('table')].map(t => t.rows.length);
  const out = document.createElement('div'); out.id = 'capcse-check';
  out.textContent = JSON.stringify({imgs, tables, pre: document.querySelectorAll('pre').length,
                                    width: document.documentElement.scrollWidth});
  document.body.appendChild(out);
});</script>"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (CI installs Debian's chromium: .ci/run)")
def test_compare_report_renders_in_headless_chromium(runs, tmp_path, monkeypatch):
    out = _report(runs, tmp_path, monkeypatch)
    check = out / "check.html"   # the page plus a script that records what the browser rendered
    check.write_text((out / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,2000",
             "--virtual-time-budget=5000"]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(flags + ["--dump-dom", check.as_uri()], capture_output=True, text=True, timeout=180, env=env)
    m = re.search(r'<div id="capcse-check">(.*?)</div>', dom.stdout)
    assert m, dom.stderr[-2000:]
    seen = json.loads(m.group(1).replace("&quot;", '"'))
    assert len(seen["imgs"]) == 3 and all(w > 300 for w in seen["imgs"])   # the three PNGs decoded
    assert seen["tables"] == [14, 3, 3] and seen["pre"] == 0                 # header + rows: 12 settings + files; 2 runs; 2 runs
    assert seen["width"] <= 1200                                             # no horizontal scrolling
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", (out / "report.html").as_uri()], capture_output=True,
                   timeout=180, env=env)
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 2000) and len(set(im.convert("L").resize((60, 100)).getdata())) > 20


def test_saved_weights_statement_follows_what_the_run_recorded(runs, tmp_path, monkeypatch):
    """train_summary.json's best_loaded (what the run did) decides the sentence, not the recipe's wish."""
    summary_path = runs / "train" / "train_summary.json"
    summary = json.loads(summary_path.read_text())
    summary["best_loaded"] = False
    summary_path.write_text(json.dumps(summary))
    page_text = (_report(runs, tmp_path, monkeypatch) / "report.html").read_text()
    assert "are those of the last step" in page_text and "are those of step 20" not in page_text
