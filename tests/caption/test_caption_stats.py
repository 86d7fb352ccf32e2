"""Corpus statistics: hand-computed distinct-n and vocabulary, method split, the plot."""

from __future__ import annotations

import json

from capcse.caption.stats import corpus_stats, describe_corpora, load_corpora, tokens
from capcse.cli import main as cli_main


def test_hand_computed_statistics():
    s = corpus_stats(["A dog runs.", "a dog sits", "the cat's bed"])
    # tokens: [a dog runs] [a dog sits] [the cat's bed] -> 9 unigrams, 7 distinct
    assert tokens("the cat's bed!") == ["the", "cat's", "bed"]
    assert s["captions"] == 3 and s["vocab_size"] == 7
    assert s["distinct_1"] == round(7 / 9, 6)
    # bigrams: (a dog) (dog runs) (a dog) (dog sits) (the cat's) (cat's bed) -> 6, 5 distinct
    assert s["distinct_2"] == round(5 / 6, 6)
    assert s["tokens"] == {"mean": 3.0, "median": 3.0, "min": 3, "max": 3}
    assert s["chars"]["max"] == len("the cat's bed")
    assert s["token_length_histogram"] == {3: 3}


def test_methods_are_split_and_plotted_side_by_side(tmp_path, capsys):
    run = tmp_path / "captions.jsonl"
    rows = [{"caption": "a dog on grass", "decoding": {"method": "nucleus"}},
            {"caption": "a brown dog leaps over a fallen log", "decoding": {"method": "nucleus"}},
            {"caption": "a dog on the grass", "decoding": {"method": "beam"}},
            {"caption": "a dog on the grass", "decoding": {"method": "beam"}}]
    run.write_text("".join(json.dumps(r) + "\n" for r in rows))
    human = tmp_path / "human.txt"
    human.write_text("a man rides a bike\n")
    corpora = load_corpora([str(run), f"human={human}"])
    assert list(corpora) == ["beam", "nucleus", "human"]
    assert corpora["beam"] == ["a dog on the grass"] * 2
    assert cli_main(["caption", "stats", str(run), f"human={human}", "--out", str(tmp_path / "s")]) == 0
    assert "| beam | 2 |" in capsys.readouterr().out
    stats = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert stats["beam"]["distinct_1"] == 0.5 and stats["nucleus"]["captions"] == 2
    png = (tmp_path / "s" / "lengths.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert describe_corpora([str(human)], tmp_path / "t")["human"]["vocab_size"] == 4
