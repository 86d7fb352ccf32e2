"""`capcse link` on bad input: one-line errors (exit 2), recipes found from anywhere, loud drops in eval."""

import json

import numpy as np
import pytest

from capcse.cli import main


def _records(tmp_path, n_clusters=6, per=2):
    """A records CSV (image files exist but are never opened by eval) and matching embeddings."""
    (tmp_path / "img").mkdir()
    rows = ["record_id,image,text,cluster_id,split"]
    ids, clusters, splits = [], [], []
    for c in range(n_clusters):
        split = "validation" if c < n_clusters // 2 else "test"
        for r in range(per):
            rid = f"c{c}_r{r}"
            (tmp_path / "img" / f"{rid}.jpg").write_bytes(b"")
            rows.append(f"{rid},img/{rid}.jpg,caption number {c} about thing {c} copy,c{c},{split}")
            ids.append(rid), clusters.append(f"c{c}"), splits.append(split)
    (tmp_path / "records.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((n_clusters, 8))
    lab = np.repeat(np.arange(n_clusters), per)
    emb = {"record_id": np.array(ids), "cluster_id": np.array(clusters), "split": np.array(splits),
           "image": centres[lab] + 0.01 * rng.standard_normal((len(lab), 8)), "text": centres[lab] + 0.01 * rng.standard_normal((len(lab), 8))}
    return tmp_path / "records.csv", emb


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("capcse link: error:") and "Traceback" not in err[0]
    return err[0]


def test_cluster_on_an_npz_without_the_arrays_is_a_one_line_error(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    assert main(["link", "cluster", str(tmp_path / "x.npz"), "--threshold", "0.1", "--out", str(tmp_path / "c.csv")]) == 2
    assert "missing array(s) record_id" in _one_line_error(capsys)


def test_train_config_from_outside_the_repo_and_by_name(tmp_path, monkeypatch, capsys):
    from capcse.cli import build_parser
    from capcse.cli.link import _apply_config

    monkeypatch.chdir(tmp_path)  # configs/... does not exist here
    for given in ("configs/clippings-supervised.yaml", "clippings-supervised"):
        args = build_parser().parse_args(["link", "train", "f.npz", "--out", "o", "--config", given])
        _apply_config(args)
        assert (args.supcon_batch, args.select_best, args.stages) == (54, True, ["clip", "supcon"])
    assert main(["link", "train", "f.npz", "--out", "o", "--config", "configs/no-such-recipe.yaml"]) == 2
    assert "no recipe" in _one_line_error(capsys)
    (tmp_path / "bad.yaml").write_text("supcon_epochs: many\n")
    assert main(["link", "train", "f.npz", "--out", "o", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "supcon_epochs: expected int, got 'many'" in _one_line_error(capsys)


def test_train_on_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["link", "train", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in _one_line_error(capsys)


def test_eval_drops_records_without_embedding_from_every_row_and_says_so(tmp_path, capsys):
    records, emb = _records(tmp_path)
    keep = emb["record_id"] != "c5_r1"  # one test record has no embedding
    np.savez(tmp_path / "emb.npz", **{k: v[keep] for k, v in emb.items()})
    out = tmp_path / "res.json"
    assert main(["link", "eval", str(tmp_path / "emb.npz"), "--records", str(records), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "WARNING: 1 of 12 valid records" in err and "c5_r1" in err
    res = json.loads(out.read_text())
    assert res["dropped"]["records_without_embedding"] == ["c5_r1"]
    assert res["records_per_split"]["test"] == 5
    assert {r["name"]: r["test"]["n_records"] for r in res["rows"]} == {"visual": 5, "language": 5, "multimodal": 5, "jaccard": 5}
    assert next(r for r in res["rows"] if r["name"] == "jaccard")["variant"] == "original"
