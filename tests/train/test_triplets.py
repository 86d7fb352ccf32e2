"""`capcse triplets`: NLI pairs with labels -> SimCSE triplets CSV."""

from __future__ import annotations

import csv

import pytest

from capcse.cli import main
from capcse.train.data import load_train_dataset

SNLI_TXT = (  # SNLI 1.0 .txt layout: extra columns, '-' = no gold label
    "gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1\tsentence2\tpairID\n"
    "entailment\tx\tx\tA man plays a guitar.\tA man plays music.\t1\n"
    "contradiction\tx\tx\tA man plays a guitar.\tThe man sleeps.\t2\n"
    "neutral\tx\tx\tA man plays a guitar.\tA man plays a song he wrote.\t3\n"
    "-\tx\tx\tA man plays a guitar.\tA person is outside.\t4\n"
    "entailment\tx\tx\tKids play \"tag\".\tChildren are playing.\t5\n"
)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_hand_example(tmp_path, capsys):
    src = tmp_path / "snli_1.0_dev.txt"
    src.write_text(SNLI_TXT, encoding="utf-8")
    out = tmp_path / "t.csv"
    assert main(["triplets", "--nli", str(src), "--out", str(out)]) == 0
    assert read_csv(out) == [["sent0", "sent1", "hard_neg"],
                             ["A man plays a guitar.", "A man plays music.", "The man sleeps."]]
    report = capsys.readouterr().out
    assert "4 labelled pairs (skipped: 1 without gold label, 0 malformed)" in report
    assert "1 of 2 premises" in report and "1 triplets" in report


def test_several_files_pool_and_the_output_trains(tmp_path):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("sentence1\tsentence2\tgold_label\np\te1\tentailment\nq\teq\tentailment\n", encoding="utf-8")
    b.write_text("sentence1\tsentence2\tgold_label\np\tc1\tcontradiction\nq\tcq\tcontradiction\n", encoding="utf-8")
    out = tmp_path / "t.csv"
    assert main(["triplets", "--nli", str(a), "--nli", str(b), "--format", "kornli", "--out", str(out)]) == 0
    ds = load_train_dataset(str(out))
    assert [tuple(r.values()) for r in ds] == [("p", "e1", "c1"), ("q", "eq", "cq")]


def test_korean_xnli_dev_from_the_registry(data_dir, tmp_path):
    out = tmp_path / "ko.csv"
    assert main(["triplets", "--nli", "kornli-xnli", "--split", "dev", "--data-dir", str(data_dir),
                 "--out", str(out)]) == 0
    rows = read_csv(out)[1:]
    assert len(rows) == 830  # XNLI dev: 830 premises, each with one hypothesis per label
    ds = load_train_dataset(str(out))
    assert len(ds) == 830 and ds[0]["sent0"] == rows[0][0]


def test_senteval_snli_folder_needs_a_split(data_dir, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["triplets", "--nli", str(data_dir / "downstream" / "SNLI"), "--out", str(out)]) == 2
    assert "--split" in capsys.readouterr().err and not out.exists()
    assert main(["triplets", "--nli", str(data_dir / "downstream" / "SNLI"), "--split", "dev",
                 "--format", "snli-senteval", "--out", str(out)]) == 0
    assert len(read_csv(out)) - 1 == 3172


def test_bad_row_names_file_and_line_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "bad.tsv"
    src.write_text("sentence1\tsentence2\tgold_label\np\th\tentailment\np\th2\tmaybe\n", encoding="utf-8")
    out = tmp_path / "t.csv"
    assert main(["triplets", "--nli", str(src), "--out", str(out)]) == 2
    assert f"{src}:3" in capsys.readouterr().err and not out.exists()
    assert main(["triplets", "--nli", str(src), "--skip-malformed", "--out", str(out)]) == 2  # no triplet left
    assert "no triplet" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("fmt,name", [("jsonl", "x.tsv"), ("kornli", "x.jsonl"), ("snli-senteval", "x.tsv")])
def test_format_must_match_the_input(tmp_path, capsys, fmt, name):
    src = tmp_path / name
    src.write_text("sentence1\tsentence2\tgold_label\n", encoding="utf-8")
    assert main(["triplets", "--nli", str(src), "--format", fmt, "--out", str(tmp_path / "o.csv")]) == 2
    assert f"--format {fmt}" in capsys.readouterr().err
