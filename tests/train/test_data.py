"""Training data: text corpora, CSV/TSV/JSONL triplets, registry names, bad rows, limit, NLI -> triplets."""

from __future__ import annotations

import gzip
import json

import pytest

from capcse.errors import ConfigError, DataFormatError
from capcse.train.data import load_train_dataset, nli_to_triplets


def test_text_file_skips_empty_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first sentence\n\n   \nsecond one\nthird\n", encoding="utf-8")
    ds = load_train_dataset(str(path))
    assert ds.column_names == ["text"] and ds["text"] == ["first sentence", "second one", "third"]


def test_gzipped_text_and_limit(tmp_path):
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(f"sentence {i}\n" for i in range(50)))
    ds = load_train_dataset(str(path), limit=7)
    assert ds["text"] == [f"sentence {i}" for i in range(7)]
    assert len(load_train_dataset(str(path), limit=500)) == 50


TRIPLETS = [("a man plays", "someone plays", "nobody plays"), ('he said "hi"', "he greeted, loudly", "silence"),
            ("노래하는 여자", "여자가 노래한다", "남자가 잔다")]


def test_csv_triplets_with_quotes_and_commas(tmp_path):
    import csv

    path = tmp_path / "t.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sent0", "sent1", "hard_neg"])
        w.writerows(TRIPLETS)
    ds = load_train_dataset(str(path))
    assert ds.column_names == ["sent0", "sent1", "hard_neg"]
    assert [tuple(r.values()) for r in ds] == TRIPLETS


def test_tsv_is_unquoted_and_columns_select_and_order(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("id\tsent1\tsent0\textra\n1\tb \"quoted\tx\ty\n", encoding="utf-8")
    path.write_text("id\tsent1\tsent0\textra\n1\tb \"quote\ta\ty\n2\td\tc\tz\n", encoding="utf-8")
    ds = load_train_dataset(str(path), columns=["sent0", "sent1"])
    assert ds.column_names == ["sent0", "sent1"]
    assert ds["sent0"] == ["a", "c"] and ds["sent1"] == ['b "quote', "d"]


def test_jsonl_triplets(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(dict(zip(("sent0", "sent1", "hard_neg"), t)), ensure_ascii=False) + "\n"
                            for t in TRIPLETS), encoding="utf-8")
    ds = load_train_dataset(str(path))
    assert [tuple(r.values()) for r in ds] == TRIPLETS


@pytest.mark.parametrize("name,content,line,message", [
    ("bad.csv", "sent0,sent1,hard_neg\na,b,c\nd,e,f,g\n", 3, "expected 3 columns"),
    ("bad.tsv", "sent0\tsent1\thard_neg\na\tb\tc\nd\te\n", 3, "expected 3 columns"),
    ("empty.csv", "sent0,sent1,hard_neg\na,b,c\nx,y,z\nd,  ,f\n", 4, "empty text in column(s) sent1"),
    ("multi.csv", 'sent0,sent1,hard_neg\n"a\nsecond line",b,c\nd,,f\n', 4, "empty text"),
    ("bad.jsonl", '{"sent0": "a", "sent1": "b"}\n{"sent0": "d", \n', 2, "not valid JSON"),
    ("missing.jsonl", '{"sent0": "a", "sent1": "b"}\n{"sent0": "d"}\n', 2, "'sent1' is missing"),
    ("empty.jsonl", '{"sent0": "a", "sent1": "b"}\n{"sent0": "d", "sent1": ""}\n', 2, "'sent1' is ''"),
])
def test_bad_rows_name_file_and_line(tmp_path, name, content, line, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_train_dataset(str(path))
    assert err.value.path == str(path) and err.value.line == line
    assert message in str(err.value) and f"{path}:{line}:" in str(err.value)


def test_table_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c,d\n1,2,3,4\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="1-3 text columns"):
        load_train_dataset(str(path))
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['sent0'\]"):
        load_train_dataset(str(path), columns=["sent0"])
    odd = tmp_path / "t.parquet"
    odd.write_bytes(b"x")
    with pytest.raises(ConfigError, match="unknown training file type"):
        load_train_dataset(str(odd))


def test_missing_file_and_unknown_name_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_train_dataset("nli_for_simcse.csv")
    with pytest.raises(ConfigError, match="not a known data set|unknown data set"):
        load_train_dataset("no-such-corpus")


def test_empty_corpus_is_an_error(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"e\.txt: no training text: all 2 line\(s\) are blank"):
        load_train_dataset(str(path))


def test_registry_corpus_and_captions(data_dir):
    wiki = load_train_dataset("wiki1m", data_dir=data_dir, limit=5)
    assert wiki.column_names == ["text"] and len(wiki) == 5
    caps = load_train_dataset("flickr8k", data_dir=data_dir)
    assert caps.column_names == ["text"] and len(caps) == 30000  # 6,000 training images x 5 captions


def test_nli_to_triplets_hand_example():
    pairs = [("p1", "e1", "entailment"), ("p1", "c1", "contradiction"), ("p1", "n1", "neutral"),
             ("p1", "e2", "entailment"), ("p2", "e3", "entailment"),  # p2: no contradiction -> dropped
             ("p3", "c3", "contradiction"), ("p3", "c4", "contradiction"), ("p3", "e4", " Entailment ")]
    assert nli_to_triplets(pairs) == [("p1", "e1", "c1"), ("p1", "e2", "c1"), ("p3", "e4", "c3")]
