"""Text corpora, NLI pairs and caption tables."""

from __future__ import annotations

import gzip
import json
import types

import pytest

from capcse.data import (CaptionRow, NLIPair, count_lines, load_caption_table, load_nli_pairs, read_caption_table,
                         read_text_corpus, resolve_dataset)
from capcse.errors import ConfigError, DataFormatError

pytestmark = pytest.mark.usefixtures("isolated_data_env")


# ---------------------------------------------------------------------------------------------- corpora
def test_wiki1m_prefix_streams(data_dir, caplog):
    path = resolve_dataset("wiki1m", data_dir=data_dir)  # offline: the full file is absent -> the prefix
    assert path.name == "wiki1m_for_simcse.first11914.txt"
    assert "only the first 11,914 of 1,000,000 lines" in caplog.text
    it = read_text_corpus(path)
    assert isinstance(it, types.GeneratorType)
    assert next(it) == "YMCA in South Australia"
    assert 1 + sum(1 for _ in it) == 11914 == count_lines(path)


def test_text_corpus_edge_cases(tmp_path):
    f = tmp_path / "c.txt"
    f.write_bytes(b"one \r\n\n  \ntwo\tcols\nlast")
    assert list(read_text_corpus(f)) == ["one ", "two\tcols", "last"]
    assert list(read_text_corpus(f, skip_empty=False)) == ["one ", "", "  ", "two\tcols", "last"]
    assert count_lines(f) == 5
    g = tmp_path / "c.txt.gz"
    g.write_bytes(gzip.compress(b"a\nb\n"))
    assert list(read_text_corpus(g)) == ["a", "b"] and count_lines(g) == 2
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nfine\ncaf\xe9\n")
    it = read_text_corpus(bad)
    assert next(it) == "fine"  # streaming: the error comes when line 3 is reached
    with pytest.raises(DataFormatError, match=r"bad.txt:3: not valid utf-8"):
        list(it)


# ---------------------------------------------------------------------------------------------- NLI
def test_kornli_xnli(data_dir):
    folder = resolve_dataset("kornli-xnli", data_dir=data_dir)
    dev = load_nli_pairs(folder / "xnli.dev.ko.tsv")
    test = load_nli_pairs(folder / "xnli.test.ko.tsv")
    assert (len(dev), len(test)) == (2490, 5010)
    assert isinstance(dev[0], NLIPair) and dev[0].label == "neutral"
    assert {p.label for p in test} == {"entailment", "neutral", "contradiction"}
    assert dev.skipped == {}


def test_senteval_snli_folder(data_dir):
    dev = load_nli_pairs(data_dir / "downstream/SNLI", "dev")
    assert len(dev) == 9842 and len(load_nli_pairs(data_dir / "downstream/SNLI", "test")) == 9824
    assert dev[0].sentence1 == "Two women are embracing while holding to go packages ."  # trailing space gone
    with pytest.raises(ConfigError, match="give split"):
        load_nli_pairs(data_dir / "downstream/SNLI")


def test_nli_tsv_skips_and_errors(tmp_path):
    f = tmp_path / "snli_1.0_dev.txt"  # SNLI release layout: extra columns, '-' rows
    f.write_text("gold_label\tsentence1_parse\tsentence1\tsentence2\n"
                 "neutral\t(x)\tA man .\tA person .\n-\t(x)\tNo\tconsensus\ncontradiction\t(x)\tC\tD\n",
                 encoding="utf-8")
    rows = load_nli_pairs(f)
    assert list(rows) == [NLIPair("A man .", "A person .", "neutral"), NLIPair("C", "D", "contradiction")]
    assert rows.skipped == {"no gold label": 1}
    f.write_text("sentence1\tsentence2\tgold_label\na\tb\tneutral\nc\td\n\ne\tf\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"snli_1.0_dev.txt:3: expected 3 tab-separated columns, found 2"):
        load_nli_pairs(f)
    rows = load_nli_pairs(f, skip_malformed=True)
    assert len(rows) == 1 and rows.skipped == {"malformed": 3}
    f.write_text("sentence1\tsentence2\tgold_label\na\tb\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"snli_1.0_dev.txt:2: gold_label 'maybe' is not one of"):
        load_nli_pairs(f)
    f.write_text("premise\thypothesis\tlabel\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"snli_1.0_dev.txt:1: header must name sentence1"):
        load_nli_pairs(f)


def test_nli_jsonl(tmp_path):
    f = tmp_path / "mnli.jsonl"
    lines = [{"sentence1": "a", "sentence2": "b", "gold_label": "entailment"},
             {"sentence1": "c", "sentence2": "d", "gold_label": "-"}]
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"mnli.jsonl:3: not a JSON object"):
        load_nli_pairs(f)
    rows = load_nli_pairs(f, skip_malformed=True)
    assert list(rows) == [NLIPair("a", "b", "entailment")]
    assert rows.skipped == {"no gold label": 1, "malformed": 1}


# ---------------------------------------------------------------------------------------------- captions
def test_flickr30k_tsv(data_dir):
    rows = load_caption_table("flickr30k-captions", data_dir=data_dir)
    assert len(rows) == 155070 and isinstance(rows[0], CaptionRow)
    images = {s: {r.image for r in rows if r.split == s} for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in images.items()} == {"train": 29000, "val": 1014, "test": 1000}
    test = load_caption_table("flickr30k-captions", data_dir=data_dir, split="test")
    assert len(test) == 5000 and all(r.split == "test" for r in test)


def test_multi30k_layout_equals_tsv(data_dir, tmp_path):
    """The Multi30k task2 layout (the download) gives the same rows as the shared TSV built from it."""
    rows = load_caption_table("flickr30k-captions", data_dir=data_dir)
    folder = tmp_path / "m30k"
    (folder / "raw").mkdir(parents=True)
    (folder / "image_splits").mkdir()
    expected = []
    for raw_split, split in (("train", "train"), ("val", "val"), ("test_2016", "test")):
        part = [r for r in rows if r.split == split][:15]  # 3 images x 5 captions
        images = list(dict.fromkeys(r.image for r in part))
        (folder / "image_splits" / f"{raw_split}_images.txt").write_text("\n".join(images) + "\n")
        for k in range(5):
            caps = "".join(part[5 * i + k].caption + "\n" for i in range(len(images)))
            (folder / "raw" / f"{raw_split}.{k + 1}.en.gz").write_bytes(gzip.compress(caps.encode()))
        expected += part
    assert list(read_caption_table(folder)) == expected
    (folder / "raw" / "val.2.en.gz").write_bytes(gzip.compress(b"only one\n"))
    with pytest.raises(DataFormatError, match=r"val.2.en.gz:2: 1 captions but .*val_images.txt lists 3 images"):
        read_caption_table(folder)


def test_flickr8k(data_dir):
    rows = load_caption_table("flickr8k", data_dir=data_dir)
    assert len(rows) == 40455 and rows.skipped == {"bogus image name 2258277193_586949ec62.jpg.1": 5}
    assert all(r.image != "2258277193_586949ec62.jpg.1" for r in rows)
    per_split = {s: {r.image for r in rows if r.split == s} for s in ("train", "dev", "test", None)}
    assert [len(per_split[s]) for s in ("train", "dev", "test", None)] == [6000, 1000, 1000, 91]
    mini = load_caption_table(str(data_dir / "flickr8k_mini1000"))
    assert len(mini) == 5000
    assert {r.split for r in mini} == {"train", "dev", "test", None}


def test_flickr8k_bad_token_file(tmp_path):
    for s in ("train", "dev", "test"):
        (tmp_path / f"Flickr_8k.{s}Images.txt").write_text("a.jpg\n" if s == "train" else "")
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tA dog .\na.jpg no tab\n")
    with pytest.raises(DataFormatError, match=r"Flickr8k.token.txt:2: expected 2 tab-separated columns, found 1"):
        read_caption_table(tmp_path)


def test_coco(data_dir, tmp_path):
    rows = load_caption_table("coco-captions", data_dir=data_dir)
    assert len(rows) == 25014 and {r.split for r in rows} == {"val2017"}
    assert len({r.image for r in rows}) == 5000
    assert all(r.caption == r.caption.strip() for r in rows)
    mini = read_caption_table(data_dir / "coco_mini/annotations")
    assert [sum(r.split == s for r in mini) for s in ("train2017", "val2017")] == [400, 395]
    karpathy = tmp_path / "dataset_coco.json"
    karpathy.write_text(json.dumps({"images": [
        {"filename": "x.jpg", "split": "test", "sentences": [{"raw": "A cat. "}, {"raw": "A kitten."}]}]}))
    assert list(read_caption_table(karpathy)) == [CaptionRow("x.jpg", "A cat.", "test"),
                                                 CaptionRow("x.jpg", "A kitten.", "test")]
    broken = tmp_path / "captions_val2017.json"
    broken.write_text('{"images": [], \n "annotations": [}')
    with pytest.raises(DataFormatError, match=r"captions_val2017.json:2: invalid JSON"):
        read_caption_table(broken)
    with pytest.raises(ConfigError, match="neither a caption data set"):
        load_caption_table("no-such-captions")
