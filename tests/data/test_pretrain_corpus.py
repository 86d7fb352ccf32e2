"""The leakage-checked pretraining corpus: planted evaluation sentences are found and dropped."""

from __future__ import annotations

import json

import pytest

from capcse.data.pretrain_corpus import (EvalIndex, TextSource, build_corpus, check_leakage, eval_index,
                                         exact_key, strict_key)
from capcse.errors import ConfigError


def test_keys():
    assert exact_key("  A Man   plays\tGuitar .") == "a man plays guitar ."
    # a Moses-tokenised SentEval copy and its raw original share the strict key
    assert strict_key("the man did n't play , he sang .") == strict_key("The man didn't play, he sang.")
    assert strict_key("개가 뛴다.") == "개가뛴다"


def test_planted_sentences_are_dropped_and_counted(tmp_path):
    index = EvalIndex()
    index.add("sts-test", ["A man is playing a guitar.", "the cat did n't move ."])
    index.add("captions-test", ["Two dogs run on the beach."])
    source = TextSource("planted", "test", lambda d: [
        "a man is playing a guitar.",            # exact (case) match
        "The cat didn't move.",                   # tokenisation-blind match only
        "Two dogs run on the beach.",             # exact match of another set
        "A woman is slicing an onion.",           # clean
        "A woman is slicing an onion.",           # duplicate of a clean sentence
        "   ",                                    # empty: ignored
    ])
    report = build_corpus("en", tmp_path / "c.txt", sources=[source], index=index)
    assert (tmp_path / "c.txt").read_text() == "A woman is slicing an onion.\n"
    s = report.sources[0]
    assert (s.read, s.leaked, s.duplicates, s.kept) == (5, 3, 1, 1)
    assert report.matches_before == {"exact": 2, "strict": 3}
    assert report.matches_after == {"exact": 0, "strict": 0}
    assert report.dropped_by_eval_set == {"sts-test": 2, "captions-test": 1}
    assert check_leakage(["a MAN is playing a guitar.", "fine"], index) == {"exact": 1, "strict": 1}


def test_empty_corpus_is_an_error(tmp_path):
    index = EvalIndex()
    index.add("t", ["only sentence"])
    with pytest.raises(ConfigError, match="no sentence left"):
        build_corpus("en", tmp_path / "c.txt", sources=[TextSource("s", "g", lambda d: ["Only sentence"])],
                     index=index)


def test_real_evaluation_sets_catch_a_planted_sts_sentence(tmp_path, data_dir):
    from capcse.data.loaders import load_sts

    stsb = load_sts("stsb", "test", data_dir=data_dir)["stsb"]
    sts12 = next(iter(load_sts("sts12", "test", data_dir=data_dir).values()))
    index = eval_index("en", data_dir)
    assert index.sizes["stsb-test"] > 4000 and "karpathy-coco_test" in index.sizes
    planted = [stsb.sentences1[0].upper(), sts12.sentences2[3], "A sentence no evaluation has ever read, surely 4711."]
    source = TextSource("planted", "test", lambda d: planted)
    report = build_corpus("en", tmp_path / "c.txt", sources=[source], index=index)
    assert report.sources[0].leaked == 2 and report.sentences == 1
    assert report.matches_after == {"exact": 0, "strict": 0}


def test_cli_check_finds_a_planted_sentence(tmp_path, data_dir, capsys):
    from capcse.cli import main
    from capcse.data.loaders import load_sts

    sick = load_sts("sickr", "test", data_dir=data_dir)["sickr"]
    path = tmp_path / "mine.txt"
    path.write_text(f"nothing to see here 4711\n{sick.sentences1[10]}\n", encoding="utf-8")
    assert main(["corpus", "check", str(path), "--data-dir", str(data_dir)]) == 1
    assert "exact 1" in capsys.readouterr().out


def test_korean_corpus_builds_without_korsts_dev_test(tmp_path, data_dir):
    from capcse.cli import main

    out = tmp_path / "ko.txt"
    assert main(["corpus", "build", "--lang", "ko", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["matches_after"] == {"exact": 0, "strict": 0}
    assert {s["name"] for s in report["sources"]} == {"korsts-train", "xnli-ko-dev", "xnli-ko-test"}
    assert report["sentences"] > 10000


def test_one_writer_for_the_corpus_report(tmp_path):
    """capcse corpus build and capcse pretrain's corpus:<lang> write the report beside the corpus with the same
    function: <corpus>.json with the genre mix (shares of tokens) and <corpus>.md."""
    from capcse.data.pretrain_corpus import CorpusReport, SourceStats, write_report

    report = CorpusReport("en", "c.txt", sentences=3, tokens=40,
                          sources=[SourceStats("a", "news", kept=2, tokens=30), SourceStats("b", "captions", kept=1,
                                                                                             tokens=10)])
    write_report(report, tmp_path / "corpus-en.txt")
    saved = json.loads((tmp_path / "corpus-en.json").read_text())
    assert saved["genre_mix"] == {"news": 0.75, "captions": 0.25} and saved["sentences"] == 3
    assert (tmp_path / "corpus-en.md").read_text() == report.markdown()
