"""The registry: entries, pinned checksums against the local copies, roots, resolution order, listing."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from capcse.data import REGISTRY, data_roots, find_local, get_spec, is_offline, list_datasets, locate, resolve_dataset
from capcse.data.registry import cache_dir
from capcse.errors import ConfigError, DataNotFoundError

pytestmark = pytest.mark.usefixtures("isolated_data_env")

REQUIRED = ["sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr", "mr", "cr", "subj", "mpqa", "sst2", "trec",
            "mrpc", "korsts", "kornli-xnli", "wiki1m", "flickr30k-captions", "flickr8k", "coco-captions"]


def test_every_required_entry():
    for name in REQUIRED:
        spec = REGISTRY[name]
        assert spec.origin and all(u.startswith(("http://", "https://")) for u in spec.origin)
        assert spec.expected and all(v > 0 for v in spec.expected.values())
        assert spec.layouts and spec.license
        assert any(lay.sources for lay in spec.layouts), f"{name}: no download source"
    assert REGISTRY["sts12"].variants == ("senteval", "raw")
    assert REGISTRY["wiki1m"].expected["lines"] == 1_000_000
    assert REGISTRY["wiki1m"].layouts[1].partial and REGISTRY["wiki1m"].layouts[1].expected["lines"] == 11_914


def test_checksums_are_sha256_or_unknown():
    n_known = 0
    for spec in REGISTRY.values():
        for lay in spec.layouts:
            for src in lay.sources:
                for rf in src.files:
                    if rf.sha256 is None:
                        assert "checksum not published" in src.label  # said honestly in the label
                    else:
                        assert len(rf.sha256) == 64 and int(rf.sha256, 16) >= 0
                        n_known += 1
    assert n_known > 100


def test_pinned_checksums_match_local_copies(data_dir):
    """Every pinned sha256 whose file has a local copy equals the sha256 of that copy's bytes."""
    checked = 0
    for spec in REGISTRY.values():
        for lay in spec.layouts:
            local = find_local(spec.name, data_dir=data_dir, variant=lay.variant) if lay.sources else None
            if local is None or local.layout is not lay:
                continue
            for src in lay.sources:
                for rf in src.files:
                    if rf.sha256 and (local.path / rf.dest).is_file():
                        assert hashlib.sha256((local.path / rf.dest).read_bytes()).hexdigest() == rf.sha256, rf.url
                        checked += 1
    assert checked == 128  # every pinned file except the Multi30k ones (no local copy of that layout)


def test_roots_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPCSE_DATA", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    monkeypatch.setenv("CAPCSE_CACHE", str(tmp_path / "c"))
    assert data_roots(tmp_path / "x") == [tmp_path / "x", tmp_path / "a", tmp_path / "b", tmp_path / "c" / "data"]
    assert data_roots() == [tmp_path / "a", tmp_path / "b", tmp_path / "c" / "data"]
    monkeypatch.delenv("CAPCSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "capcse"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "capcse"


def test_offline_flags(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert not is_offline()
    monkeypatch.setenv("CAPCSE_OFFLINE", "yes")
    assert is_offline()
    monkeypatch.setenv("CAPCSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert is_offline()


def test_resolution_order(data_dir, tmp_path, monkeypatch, isolated_data_env):
    """explicit data_dir, then CAPCSE_DATA, then the cache."""
    roots = {k: tmp_path / k for k in ("explicit", "env", "cache")}
    roots["cache"] = isolated_data_env / "data"
    for root in roots.values():
        shutil.copytree(data_dir / "korsts", root / "korsts")
    monkeypatch.setenv("CAPCSE_DATA", str(roots["env"]))
    assert resolve_dataset("korsts", data_dir=roots["explicit"]) == roots["explicit"] / "korsts"
    assert resolve_dataset("korsts") == roots["env"] / "korsts"
    monkeypatch.delenv("CAPCSE_DATA")
    assert resolve_dataset("korsts") == roots["cache"] / "korsts"
    # an explicit root without the set falls through to the next root
    assert resolve_dataset("korsts", data_dir=tmp_path / "empty") == roots["cache"] / "korsts"


def test_incomplete_folder_and_message(tmp_path, isolated_data_env):
    (tmp_path / "downstream/STS/STSBenchmark").mkdir(parents=True)
    (tmp_path / "downstream/STS/STSBenchmark/sts-train.csv").write_text("")
    with pytest.raises(DataNotFoundError) as exc:
        locate("stsb", data_dir=tmp_path)
    msg = str(exc.value)
    assert msg.startswith("data set stsb (variant 'senteval') not found.")
    assert f"{tmp_path}/downstream/STS/STSBenchmark (incomplete: missing sts-dev.csv, sts-test.csv)" in msg
    for rel in ("STS/STSBenchmark", "data/downstream/STS/STSBenchmark", "SentEval/data/downstream/STS/STSBenchmark"):
        assert f"{tmp_path / rel} (not there)" in msg and f"{isolated_data_env / 'data' / rel} (not there)" in msg
    assert "offline (HF_HUB_OFFLINE=1): no download attempted" in msg
    assert "--data-dir DIR or CAPCSE_DATA=DIR" in msg and "Stsbenchmark.tar.gz" in msg


def test_variants_and_names(data_dir):
    assert get_spec(" STSB ").name == "stsb"
    with pytest.raises(ConfigError, match="unknown data set 'sts17'; known: sts12"):
        get_spec("sts17")
    assert find_local("sickr", data_dir=data_dir, variant="raw").path.name == "SICK"  # single variant
    assert find_local("sts12", data_dir=data_dir, variant="raw").path.name == "STS2012-en-test-gold"
    assert find_local("sts12", data_dir=data_dir).path.name == "STS12-en-test"  # default: senteval
    with pytest.raises(ConfigError, match="no variant 'lower'"):
        find_local("stsb", data_dir=data_dir, variant="lower")
    with pytest.raises(DataNotFoundError, match="download not requested"):
        locate("wiki1m", data_dir=data_dir, variant="full", download=False)


def test_list_datasets_real_data(data_dir):
    rows = {(r["name"], r["variant"]): r for r in list_datasets(data_dir)}
    assert {n for n, _ in rows} == set(REGISTRY)
    for key, row in rows.items():
        if key in {("wiki1m", "full"), ("flickr30k-captions", "multi30k")}:
            assert not row["found"] and row["status"] == "missing"
        elif key == ("wiki1m", "prefix"):
            assert row["found"] and row["status"] == "prefix" and row["counts"] == {"lines": 11914}
        else:
            assert row["found"] and row["ok"] and row["status"] == "ok", row
            assert all(row["counts"][k] == v for k, v in row["expected"].items())
    assert rows[("stsb", "raw")]["path"] == str(data_dir / "sts_raw/stsbenchmark")


def test_list_datasets_reports_mismatch_and_errors(data_dir, tmp_path):
    shutil.copytree(data_dir / "korsts", tmp_path / "korsts")
    dev = tmp_path / "korsts/sts-dev.tsv"
    dev.write_text("\n".join(dev.read_text(encoding="utf-8").split("\n")[:-3]), encoding="utf-8")
    shutil.copytree(data_dir / "kornli", tmp_path / "kornli")
    (tmp_path / "kornli/xnli.dev.ko.tsv").write_text("sentence1\tsentence2\tgold_label\na\tb\n", encoding="utf-8")
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    assert rows["korsts"]["status"] == "mismatch" and rows["korsts"]["counts"]["dev"] == 1497
    assert rows["kornli-xnli"]["status"] == "error" and "xnli.dev.ko.tsv:2:" in rows["kornli-xnli"]["note"]
    assert rows["stsb"]["status"] == "missing" and rows["stsb"]["path"] is None
