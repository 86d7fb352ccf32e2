"""Record format reader (bad records reported by id) and the reproducible benchmark builder."""

import json
from pathlib import Path

import pytest
from PIL import Image

from capcse.data.linkage import build_benchmark, noisy_caption, read_records, write_records
from capcse.errors import DataFormatError


def _image(path: Path, colour=(200, 30, 30), size=(64, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_bad_records_are_reported_by_id(tmp_path, suffix):
    _image(tmp_path / "img" / "a.jpg")
    _image(tmp_path / "img" / "b.jpg")
    rows = [
        {"record_id": "r1", "image": "img/a.jpg", "text": "a red square", "cluster_id": "k1", "split": "train"},
        {"record_id": "r2", "image": "img/missing.jpg", "text": "gone", "cluster_id": "k1", "split": "train"},
        {"record_id": "r3", "image": "img/b.jpg", "text": "   ", "cluster_id": "k2", "split": "val"},
        {"record_id": "r4", "image": "img/b.jpg", "text": "no cluster", "cluster_id": "", "split": "test"},
        {"record_id": "r5", "image": "img/b.jpg", "text": "stranger", "cluster_id": "zz", "split": "test"},
        {"record_id": "r1", "image": "img/b.jpg", "text": "duplicate id", "cluster_id": "k2", "split": "test"},
        {"record_id": "r6", "image": "img/b.jpg", "text": "fine", "cluster_id": "k2", "split": "dev"},
    ]
    path = write_records(tmp_path / f"records{suffix}", rows)
    records, report = read_records(path, known_clusters={"k1", "k2"})
    assert [r.record_id for r in records] == ["r1", "r6"]
    assert records[1].split == "validation" and Path(records[0].image) == tmp_path / "img" / "a.jpg"
    assert report.missing_image == ["r2"] and report.empty_text == ["r3"]
    assert report.unknown_cluster == ["r4", "r5"] and report.duplicate_id == ["r1"]
    assert report.n_rows == 7 and report.n_bad == 5 and "r2" in report.summary()
    with pytest.raises(DataFormatError, match="missing image: 1 \\(r2\\)"):
        read_records(path, known_clusters={"k1", "k2"}, strict=True)


def test_cluster_spread_over_two_splits_is_reported(tmp_path):
    _image(tmp_path / "a.jpg")
    rows = [{"record_id": f"r{k}", "image": "a.jpg", "text": "t", "cluster_id": "k", "split": s} for k, s in enumerate(["train", "test"])]
    records, report = read_records(write_records(tmp_path / "r.csv", rows))
    assert records == [] and report.cluster_in_two_splits == ["r0", "r1"]


def test_malformed_rows_name_file_and_line(tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_text("record_id,image,text,cluster_id,split\nr1,a.jpg,hello,k,train\nr2,a.jpg,too,many,fields,here\n")
    with pytest.raises(DataFormatError, match=r"r\.csv:3: 6 fields"):
        read_records(bad)
    bad.write_text("record_id,image,text,cluster_id,split\nr1,a.jpg,hello,k,holiday\n")
    with pytest.raises(DataFormatError, match=r"r\.csv:2: unknown split"):
        read_records(bad)
    js = tmp_path / "r.jsonl"
    js.write_text('{"record_id": "r1"}\n{not json\n')
    with pytest.raises(DataFormatError, match=r"r\.jsonl:1: missing field"):
        read_records(js)


WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]


def _source_set(tmp_path, n=6):
    src = tmp_path / "src"
    lines = ["image\tcaption_id\tsplit\tcaption"]
    for k in range(n):
        _image(src / "images" / f"im{k}.jpg", colour=(40 * k, 255 - 30 * k, 90), size=(80 + k, 60))
        for c in range(5):
            lines.append(f"im{k}.jpg\tim{k}.jpg#{c}\ttrain\t{WORDS[c]} {WORDS[c]} {WORDS[c]} caption of picture {k}")
    (src / "captions.tsv").write_text("\n".join(lines) + "\n")
    return src


def test_builder_is_reproducible_and_splits_by_source(tmp_path):
    src = _source_set(tmp_path)
    a = build_benchmark(src / "captions.tsv", src / "images", tmp_path / "a", seed=3, min_copies=2, max_copies=4)
    b = build_benchmark(src / "captions.tsv", src / "images", tmp_path / "b", seed=3, min_copies=2, max_copies=4)
    c = build_benchmark(src / "captions.tsv", src / "images", tmp_path / "c", seed=4, min_copies=2, max_copies=4)
    assert a["records_sha256"] == b["records_sha256"] != c["records_sha256"]
    for img in (tmp_path / "a" / "images").iterdir():
        assert img.read_bytes() == (tmp_path / "b" / "images" / img.name).read_bytes()
    records, report = read_records(tmp_path / "a" / "records.csv", strict=True)
    assert report.n_bad == 0 and len(records) == a["n_records"]
    by_cluster = {}
    for r in records:
        by_cluster.setdefault(r.cluster_id, []).append(r)
    assert len(by_cluster) == 6
    for members in by_cluster.values():
        assert 2 <= len(members) <= 4
        assert len({m.split for m in members}) == 1  # split by source image
        sizes = {Image.open(m.image).size for m in members}
        assert all(max(s) <= 320 for s in sizes)
    assert json.loads((tmp_path / "a" / "build.json").read_text())["n_sources"] == 6


def test_builder_uses_different_captions_per_copy(tmp_path):
    src = _source_set(tmp_path, n=2)
    build_benchmark(src / "captions.tsv", src / "images", tmp_path / "o", seed=0, min_copies=5, max_copies=5)
    records, _ = read_records(tmp_path / "o" / "records.csv")
    for k in ("c00000", "c00001"):
        texts = [r.text for r in records if r.cluster_id == k]
        assert len(texts) == 5
        # each caption's code word appears three times, so word noise cannot erase it: 5 distinct captions
        codes = [max(WORDS, key=t.count) for t in texts]
        assert sorted(codes) == sorted(WORDS)


def test_noisy_caption_is_seeded_and_keeps_a_word():
    import random

    text = "a black dog runs across the green grass near a lake"
    assert noisy_caption(text, random.Random(1)) == noisy_caption(text, random.Random(1))
    assert noisy_caption("word", random.Random(0), p_drop=1.0) == "word"
