"""`capcse link build | embed | cluster | eval` end to end on a few real Flickr8k images."""

import csv
import json

import pytest

from capcse.cli import main


@pytest.mark.slow
def test_link_cli_end_to_end(tmp_path, data_dir, minilm_path):
    out = tmp_path / "bench"
    assert main(["link", "build", "--data-dir", str(data_dir), "--out", str(out), "--limit", "16", "--min-copies", "2", "--max-copies", "3"]) == 0
    summary = json.loads((out / "build.json").read_text())
    assert summary["n_sources"] == 16 and summary["n_records"] >= 32
    emb = tmp_path / "emb.npz"
    assert main(["link", "embed", str(out / "records.csv"), "--text-model", str(minilm_path), "--out", str(emb)]) == 0
    res = tmp_path / "res.json"
    assert main(["link", "eval", str(emb), "--records", str(out / "records.csv"), "--out", str(res)]) == 0
    rows = {r["name"]: r for r in json.loads(res.read_text())["rows"]}
    assert set(rows) == {"visual", "language", "multimodal", "jaccard"}
    for r in rows.values():
        assert -1.0 <= r["test"]["ari"] <= 1.0 and r["test"]["n_records"] == summary["records_per_split"]["test"]
    assert rows["visual"]["test"]["ari"] > 0.2  # reprints of one photo are near each other for a real CNN (4 test clusters)
    clusters = tmp_path / "cl.csv"
    assert main(["link", "cluster", str(emb), "--threshold", str(rows["visual"]["threshold"]), "--im-wt", "1", "--out", str(clusters)]) == 0
    with open(clusters) as fh:
        assert len(list(csv.DictReader(fh))) == summary["records_per_split"]["test"]


def test_link_build_without_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CAPCSE_DATA", raising=False)
    assert main(["link", "build", "--out", str(tmp_path / "x")]) == 2
    assert "CAPCSE_DATA" in capsys.readouterr().err


def test_train_recipe_precedence(tmp_path):
    from capcse.cli import build_parser
    from capcse.cli.link import _apply_config
    from capcse.errors import ConfigError

    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    args = build_parser().parse_args(["link", "train", "f.npz", "--out", "o", "--config", str(repo / "configs" / "clippings-supervised.yaml"), "--m", "2"])
    _apply_config(args)
    assert (args.stages, args.m, args.k, args.supcon_batch, args.im_wt) == (["clip", "supcon"], 2, 3, 54, 0.5)
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [clip]\nlearning_rate: 3\n")
    args = build_parser().parse_args(["link", "train", "f.npz", "--out", "o", "--config", str(bad)])
    with pytest.raises(ConfigError, match="learning_rate"):
        _apply_config(args)
