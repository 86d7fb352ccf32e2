"""Caption filters: hand-counted examples for every filter, the report and the output files."""

from __future__ import annotations

import json

import pytest

from capcse.caption.filters import (
    FilterConfig,
    MinHashLSH,
    filter_captions,
    filter_corpus,
    jaccard,
    normalise,
    read_corpus,
    shingles,
)
from capcse.cli import main as cli_main
from capcse.errors import DataFormatError

CORPUS = [
    "a dog runs on the grass in the park",        # 0 kept (35 chars)
    "A dog runs on the grass, in the park.",      # 1 exact duplicate of 0 after normalisation
    "short",                                      # 2 < 10 chars
    "a dog runs on the grass in the big park",    # 3 near duplicate of 0: bigram Jaccard 7/10
    "   ",                                        # 4 empty
    "two children play football near a river",   # 5 kept
    "one two three four five six seven eight nine ten eleven twelve",  # 6 > 10 words
    "two small children play football near a river bank",  # 7 bigram Jaccard 5/9 with 5: kept at 0.7
]


def test_normalise_shingles_jaccard():
    assert normalise("  A Dog, running -- fast!\tÉté ") == "a dog running fast été"
    assert normalise("ﬁne") == "fine"  # NFKC
    assert shingles("a b c", 2) == {"a b", "b c"}
    assert shingles("a", 2) == {"a"} and shingles("", 2) == set()
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)


def test_each_filter_counts_what_it_removed():
    cfg = FilterConfig(min_chars=10, max_tokens=10, dedup=True, near_dup_threshold=0.7)
    kept, removed, report = filter_captions(CORPUS, cfg)
    assert kept == [0, 5, 7]
    assert report["removed"] == {"empty": 1, "min_chars": 1, "max_chars": 0, "min_tokens": 0, "max_tokens": 1,
                                 "exact_duplicates": 1, "near_duplicates": 1}
    assert report["input"] == 8 and report["kept"] == 3 and report["removed_total"] == 5
    by_index = {r["index"]: r for r in removed}
    assert by_index[1]["filter"] == "exact_duplicates" and by_index[1]["duplicate_of"] == 0
    assert by_index[3]["filter"] == "near_duplicates" and by_index[3]["duplicate_of"] == 0
    # alone: 1 is a near duplicate of 0 (Jaccard 1); a stricter threshold keeps the 0.7 pair (0, 3),
    # a looser one also removes the 5/9 pair (5, 7)
    assert filter_captions(CORPUS, FilterConfig(near_dup_threshold=0.71))[0] == [0, 2, 3, 5, 6, 7]
    assert filter_captions(CORPUS, FilterConfig(near_dup_threshold=0.5))[0] == [0, 2, 5, 6]


def test_length_direction_is_explicit():
    caps = ["x" * 39, "y" * 40, "z" * 41]
    assert filter_captions(caps, FilterConfig(min_chars=40))[0] == [1, 2]  # the seed's filter
    assert filter_captions(caps, FilterConfig(max_chars=40))[0] == [0, 1]
    assert filter_captions(["a b", "a b c", "a b c d"], FilterConfig(min_tokens=3))[0] == [1, 2]


def test_token_filter_with_a_tokenizer(minilm_path):
    # "embeddings" is 4 word pieces in BERT's vocabulary: 1 word, 4 tokens
    kept, _, report = filter_captions(["embeddings", "dog"], FilterConfig(min_tokens=2, tokenizer=str(minilm_path)))
    assert kept == [0] and report["removed"]["min_tokens"] == 1


def test_lsh_finds_every_pair_above_threshold_on_real_captions(data_dir):
    """Against brute force on 600 real Flickr8k captions: LSH + exact check removes the same captions."""
    lines = (data_dir / "flickr8k_mini1000" / "captions.tsv").read_text(encoding="utf-8").splitlines()[1:601]
    caps = [line.split("\t")[3] for line in lines]
    t = 0.5
    kept, _, _ = filter_captions(caps, FilterConfig(near_dup_threshold=t, num_perm=128, bands=64))
    brute: list[int] = []
    sh = [shingles(normalise(c)) for c in caps]
    for i in range(len(caps)):
        if not any(jaccard(sh[i], sh[j]) >= t for j in brute):
            brute.append(i)
    assert kept == brute and len(kept) < len(caps)
    assert MinHashLSH(64, 16).detection_probability(0.8) > 0.999


def test_filter_corpus_files_and_cli(tmp_path, capsys):
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"id": i, "caption": c}) + "\n" for i, c in enumerate(CORPUS)))
    assert cli_main(["caption", "filter", str(src), "--out", str(tmp_path / "f"), "--min-chars", "10",
                     "--max-tokens", "10", "--dedup", "--near-dup", "0.7"]) == 0
    out = capsys.readouterr().out
    assert "8 captions -> 3 kept" in out and "removed by near_duplicates: 1" in out
    assert (tmp_path / "f" / "filtered.txt").read_text().splitlines() == [CORPUS[0], CORPUS[5], CORPUS[7]]
    assert [json.loads(x)["id"] for x in (tmp_path / "f" / "filtered.jsonl").read_text().splitlines()] == [0, 5, 7]
    removed = [json.loads(x) for x in (tmp_path / "f" / "removed.jsonl").read_text().splitlines()]
    assert [r["index"] for r in removed] == [1, 2, 3, 4, 6]
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert report["kept"] == 3 and report["removed_total"] == 5
    txt = tmp_path / "c.txt"
    txt.write_text("\n".join(CORPUS) + "\n")
    assert filter_corpus(txt, tmp_path / "g", FilterConfig(dedup=True))["removed"]["exact_duplicates"] == 1


def test_bad_jsonl_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"caption": "ok"}\n{"caption": \n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2"):
        read_corpus(bad)
    bad.write_text('{"caption": "ok"}\n{"text": "x"}\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2: record has no 'caption'"):
        read_corpus(bad)
