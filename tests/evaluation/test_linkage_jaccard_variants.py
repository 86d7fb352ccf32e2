"""The Jaccard baseline's two variants: CLIPPINGS' jaccard_sim.py cleaner and grid, and capcse's."""

import numpy as np
import pytest

from capcse.evaluation.linkage_jaccard import (JACCARD_VARIANTS, clean_text, jaccard_clusters, ngram_sets,
                                               original_scan_key, tune_jaccard)


def test_original_cleaner_deletes_punctuation_and_keeps_hyphens():
    text = "The U.S. well-known dog's \"ball\"!\nCafé co-\nop"
    assert clean_text(text, "original") == "the us well-known dogs ball caf coop"
    assert clean_text(text, "capcse") == "the u s well known dog s ball caf coop"
    assert ngram_sets(["U.S. well-known"], 1, "original") == [{"us", "well-known"}]
    assert ngram_sets(["U.S. well-known"], 1, "capcse") == [{"u", "s", "well", "known"}]
    with pytest.raises(ValueError, match="variant"):
        clean_text("x", "other")


def test_grids_are_the_original_scripts_and_capcses():
    orig = JACCARD_VARIANTS["original"]
    assert orig["ns"] == (1, 2, 3, 4, 5)
    assert orig["thresholds"] == (0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.19, 0.2)
    ours = JACCARD_VARIANTS["capcse"]
    assert ours["ns"] == (1, 2, 3) and ours["thresholds"][0] == 0.05 and ours["thresholds"][-1] == 0.95 and len(ours["thresholds"]) == 37


def test_the_cleaner_decides_the_links():
    # "U.S. army" vs "U.S army": original -> {us, army} twice (Jaccard 1); capcse -> {u, s, army} twice (1) as well,
    # but "well-known fact" vs "well known fact": original {well-known, fact} vs {well, known, fact} -> 1/4;
    # capcse {well, known, fact} twice -> 1
    texts = ["well-known fact", "well known fact"]
    assert jaccard_clusters(texts, 0.5, 1, variant="capcse").tolist() == [0, 0]
    assert jaccard_clusters(texts, 0.5, 1, variant="original").tolist() == [0, 1]
    assert jaccard_clusters(texts, 0.25, 1, variant="original").tolist() == [0, 0]


def test_tuning_uses_the_variants_grid_and_the_first_maximum():
    texts = ["a b c d", "a b c e", "x y z w", "x y z v"]
    labels = [0, 0, 1, 1]
    # unigram Jaccard within a cluster is 3/5 = 0.6 and 0 across: every threshold of the original grid
    # (<= 0.2) separates them perfectly with n = 1, so the first grid point wins
    res = tune_jaccard(texts, labels, variant="original")
    assert (res.n, res.threshold, res.score, res.variant) == (1, 0.05, 1.0, "original")
    assert len(res.curve) == 5 * 16
    res = tune_jaccard(texts, labels, variant="capcse")
    assert (res.n, res.threshold, res.score) == (1, 0.05, 1.0) and len(res.curve) == 3 * 37


def test_same_scan_pairs_are_never_linked():
    # the original drops pairs whose ids agree after the first "_" (articles cut from one scan)
    assert original_scan_key("art7_scan3_p1") == "scan3_p1" and original_scan_key("noscan") == ""
    texts = ["same words here", "same words here", "same words here"]
    scans = [original_scan_key(i) for i in ("a_s1", "b_s1", "c_s2")]
    assert jaccard_clusters(texts, 0.5, 1, variant="original").tolist() == [0, 0, 0]
    # a-b share a scan, so only a-c and b-c are links: still one component
    assert jaccard_clusters(texts, 0.5, 1, variant="original", scans=scans).tolist() == [0, 0, 0]
    assert jaccard_clusters(texts[:2], 0.5, 1, variant="original", scans=scans[:2]).tolist() == [0, 1]
    res = tune_jaccard(texts[:2], [0, 0], variant="original", scans=scans[:2])
    assert res.score == pytest.approx(0.0)  # the only true pair is never linked -> all singletons
    assert np.isfinite(res.threshold)
