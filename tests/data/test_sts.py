"""STS loaders: counts against the data README, raw vs SentEval variants, SentEval's quirks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from capcse.data import STSData, load_sts, read_sts_file, read_sts_pair_files
from capcse.data.sts import read_header_tsv, read_stsb_csv
from capcse.errors import ConfigError, DataFormatError

pytestmark = pytest.mark.usefixtures("isolated_data_env")

# the data README's numbers
STS_COUNTS = {"sts12": 3108, "sts13": 1500, "sts14": 3750, "sts15": 3000, "sts16": 1186}
SPLIT_COUNTS = {
    "stsb": {"train": 5749, "dev": 1500, "test": 1379},
    "sickr": {"train": 4500, "dev": 500, "test": 4927},
    "korsts": {"train": 5749, "dev": 1500, "test": 1379},
}
SENTEVAL_SUBSETS = {  # SentEval's STS12Eval ... STS16Eval dataset lists, in order
    "sts12": ["MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"],
    "sts13": ["FNWN", "headlines", "OnWN"],
    "sts14": ["deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"],
    "sts15": ["answers-forums", "answers-students", "belief", "headlines", "images"],
    "sts16": ["answer-answer", "headlines", "plagiarism", "postediting", "question-question"],
}


@pytest.mark.parametrize("variant", ["senteval", "raw"])
@pytest.mark.parametrize("name", list(STS_COUNTS))
def test_sts_year_counts_and_subsets(data_dir, name, variant):
    data = load_sts(name, data_dir=data_dir, variant=variant)
    assert list(data) == SENTEVAL_SUBSETS[name]
    assert sum(len(d) for d in data.values()) == STS_COUNTS[name]
    for sub, d in data.items():
        assert isinstance(d, STSData) and d.name == sub
        assert d.scores.dtype == np.float64 and len(d.sentences1) == len(d.sentences2) == len(d.scores)
        assert np.all((d.scores >= 0) & (d.scores <= 5))


@pytest.mark.parametrize("name", list(SPLIT_COUNTS))
def test_split_counts(data_dir, name):
    for split, n in SPLIT_COUNTS[name].items():
        data = load_sts(name, split, data_dir=data_dir)
        assert list(data) == [name]
        assert len(data[name]) == n


@pytest.mark.parametrize("name,splits", [(n, ["test"]) for n in STS_COUNTS] + [("stsb", ["train", "dev", "test"])])
def test_raw_and_senteval_agree(data_dir, name, splits):
    """Same pairs, same gold scores, same order; only the text differs (tokenised + lower-cased)."""
    for split in splits:
        se = load_sts(name, split, data_dir=data_dir, variant="senteval")
        raw = load_sts(name, split, data_dir=data_dir, variant="raw")
        assert list(se) == list(raw)
        for key in se:
            assert np.array_equal(se[key].scores, raw[key].scores)
            assert se[key].skipped == raw[key].skipped
            # the SentEval copy is the lower-cased raw text: the first alphabetic characters agree
            a, b = se[key].sentences1[0], raw[key].sentences1[0].lower()
            assert [c for c in a if c.isalpha()][:8] == [c for c in b if c.isalpha()][:8]
        assert "sts_raw" in raw[next(iter(raw))].source and "downstream" in se[next(iter(se))].source


def test_senteval_text_is_whitespace_normalised(data_dir):
    """SentEval splits on whitespace and the batcher re-joins with single spaces: that exact string."""
    path = data_dir / "downstream/STS/STS12-en-test/STS.input.MSRpar.txt"
    first = path.read_text(encoding="utf-8").split("\n")[0].split("\t")
    d = load_sts("sts12", data_dir=data_dir)["MSRpar"]
    assert d.sentences1[0] == " ".join(first[0].split())
    assert d.sentences2[0] == " ".join(first[1].split())
    assert all("  " not in s and s == s.strip() for s in d.sentences1 + d.sentences2)


def test_raw_text_kept_exactly(data_dir):
    folder = data_dir / "sts_raw/STS2016-en-test-gs"
    gold = (folder / "STS2016.gs.headlines.txt").read_text(encoding="utf-8").split("\n")
    first_scored = next(i for i, g in enumerate(gold) if g)
    cols = (folder / "STS2016.input.headlines.txt").read_text(encoding="utf-8").split("\n")[first_scored].split("\t")
    assert len(cols) == 4  # the raw 2016 files carry the two sources too
    d = load_sts("sts16", data_dir=data_dir, variant="raw")["headlines"]
    assert (d.sentences1[0], d.sentences2[0], d.scores[0]) == (cols[0], cols[1], float(gold[first_scored]))
    stsb = load_sts("stsb", "train", data_dir=data_dir, variant="raw")["stsb"]
    assert stsb.sentences1[0] == "A plane is taking off."


def test_sts15_16_unscored_lines_skipped_like_senteval(data_dir):
    """SentEval keeps the pairs whose gold line is non-empty; an independent count over the files agrees."""
    for name, folder in (("sts15", "STS15-en-test"), ("sts16", "STS16-en-test")):
        data = load_sts(name, data_dir=data_dir)
        for sub, d in data.items():
            gs = (data_dir / f"downstream/STS/{folder}/STS.gs.{sub}.txt").read_text(encoding="utf-8").splitlines()
            kept = [float(x) for x in gs if x != ""]
            assert d.scores.tolist() == kept
            assert d.skipped == len(gs) - len(kept) > 0


def test_senteval_reference_reading(data_dir):
    """STS14 read the way SentEval's STSEval.loadFile reads it (splitlines, split on tab, filter) matches."""
    folder = data_dir / "downstream/STS/STS14-en-test"
    data = load_sts("sts14", data_dir=data_dir)
    for sub in SENTEVAL_SUBSETS["sts14"]:
        pairs = [line.split("\t") for line in (folder / f"STS.input.{sub}.txt").read_text("utf-8").splitlines()]
        gs = np.array((folder / f"STS.gs.{sub}.txt").read_text("utf-8").splitlines())
        keep = gs != ""
        ref1 = [" ".join(p[0].split()) for p, k in zip(pairs, keep) if k]
        ref2 = [" ".join(p[1].split()) for p, k in zip(pairs, keep) if k]
        assert data[sub].sentences1 == ref1 and data[sub].sentences2 == ref2
        assert np.array_equal(data[sub].scores, gs[keep].astype(float))


def test_sts13_has_no_smt(data_dir):
    assert "SMT" not in load_sts("sts13", data_dir=data_dir, variant="raw")
    assert (data_dir / "sts_raw/STS2013-en-test-gs/STS.gs.SMT.txt").exists()  # gold exists, input does not


def test_stsb_extra_columns_and_sick_korsts(data_dir):
    raw_test = data_dir / "sts_raw/stsbenchmark/sts-test.csv"
    lines = raw_test.read_text(encoding="utf-8").split("\n")
    nine = next(i for i, l in enumerate(lines) if l.count("\t") == 8)
    cols = lines[nine].split("\t")
    d = load_sts("stsb", "test", data_dir=data_dir, variant="raw")["stsb"]
    assert (d.sentences1[nine], d.sentences2[nine], d.scores[nine]) == (cols[5], cols[6], float(cols[4]))
    sick = load_sts("sickr", "dev", data_dir=data_dir, variant="raw")["sickr"]  # single variant: both accepted
    assert sick.sentences1 == load_sts("sickr", "dev", data_dir=data_dir)["sickr"].sentences1
    assert sick.source.endswith("SICK_trial.txt") and sick.scores[0] == 3.6
    ko = load_sts("korsts", "test", data_dir=data_dir)["korsts"]
    assert ko.sentences1[0] == "한 소녀가 머리를 스타일링하고 있다." and ko.scores[0] == 2.5


def test_bad_arguments(data_dir):
    with pytest.raises(ConfigError, match="splits"):
        load_sts("sts12", "dev", data_dir=data_dir)
    with pytest.raises(ConfigError, match="variant"):
        load_sts("stsb", "test", data_dir=data_dir, variant="lower")
    with pytest.raises(ConfigError, match="not an STS"):
        load_sts("mr", data_dir=data_dir)
    with pytest.raises(ConfigError, match="unknown data set"):
        load_sts("sts17", data_dir=data_dir)


# ---------------------------------------------------------------------------------------------- small files
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_pair_files_hand_made(tmp_path):
    inp = _write(tmp_path / "STS.input.x.txt", "A  b\tc d\ne\tf\ng\th\n")
    gs = _write(tmp_path / "STS.gs.x.txt", "4.2\n\n1\n")
    d = read_sts_pair_files(inp, gs, normalise=True)
    assert d.sentences1 == ["A b", "g"] and d.sentences2 == ["c d", "h"]
    assert d.scores.tolist() == [4.2, 1.0] and d.skipped == 1
    assert read_sts_pair_files(inp, gs).sentences1 == ["A  b", "g"]  # raw: as written
    assert read_sts_file(inp).scores.tolist() == [4.2, 1.0]  # gold file found beside the input


def test_pair_files_malformed(tmp_path):
    inp = _write(tmp_path / "STS.input.x.txt", "a\tb\nc d e\nf\tg\n")
    gs = _write(tmp_path / "STS.gs.x.txt", "1\n2\n3\n")
    with pytest.raises(DataFormatError, match=r"STS.input.x.txt:2: expected 2 tab-separated columns, found 1") as e:
        read_sts_pair_files(inp, gs)
    assert e.value.line == 2 and e.value.path == str(inp)
    _write(inp, "a\tb\nc\td\n")
    _write(gs, "1\nfive\n")
    with pytest.raises(DataFormatError, match=r"STS.gs.x.txt:2: gold score 'five' is not a number"):
        read_sts_pair_files(inp, gs)
    _write(gs, "1\n2\n3\n")
    with pytest.raises(DataFormatError, match=r"STS.gs.x.txt:3: 3 gold-score lines but .* has 2 input lines"):
        read_sts_pair_files(inp, gs)
    _write(gs, "1\nnan\n")
    with pytest.raises(DataFormatError, match="not finite"):
        read_sts_pair_files(inp, gs)


def test_stsb_malformed(tmp_path):
    f = _write(tmp_path / "sts-dev.csv", "g\tf\t2012\t1\t5.0\tA b\tC d\ng\tf\t2012\t2\t1.5\tonly one\n")
    with pytest.raises(DataFormatError, match=r"sts-dev.csv:2: expected at least 7 tab-separated columns, found 6"):
        read_stsb_csv(f)
    _write(f, "g\tf\t2012\t1\tx\tA\tB\n")
    with pytest.raises(DataFormatError, match=r"sts-dev.csv:1: score 'x' is not a number"):
        read_stsb_csv(f)
    _write(f, "g\tf\t2012\t1\t3\tA  b \tB\tsrc1\tsrc2\n\n")  # extra columns fine; a trailing blank line too
    d = read_stsb_csv(f, normalise=True)
    assert d.sentences1 == ["A b"] and d.scores.tolist() == [3.0]


def test_header_tsv_malformed(tmp_path):
    f = _write(tmp_path / "SICK_trial.txt", "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
               "1\ta\tb\t4.5\tNEUTRAL\n2\ta\tb\n")
    with pytest.raises(DataFormatError, match=r"SICK_trial.txt:3: expected 5 tab-separated columns, found 3"):
        read_header_tsv(f, name="sickr", s1_col="sentence_A", s2_col="sentence_B", score_col="relatedness_score")
    g = _write(tmp_path / "sts-dev.tsv", "genre\tfilename\tyear\tid\tsentence1\tsentence2\n")
    with pytest.raises(DataFormatError, match=r"sts-dev.tsv:1: header lacks column\(s\) score"):
        read_header_tsv(g, name="korsts", s1_col="sentence1", s2_col="sentence2", score_col="score")


def test_read_sts_file_formats(tmp_path):
    three = _write(tmp_path / "pairs.tsv", "a\tb\t1.5\nc\td\t0\n")
    assert read_sts_file(three).scores.tolist() == [1.5, 0.0]
    ko = _write(tmp_path / "ko.tsv", "\ufeffgenre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
                "g\tf\ty\t1\t2.5\t가\t나\n")
    d = read_sts_file(ko)
    assert (d.sentences1, d.sentences2, d.scores.tolist()) == (["가"], ["나"], [2.5])
    bad = _write(tmp_path / "bad.tsv", "a\tb\tc\td\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:1: unrecognised STS format"):
        read_sts_file(bad)
    latin = tmp_path / "STS.input.l.txt"
    latin.write_bytes(b"ok\tok\ncaf\xe9\tx\n")
    _write(tmp_path / "STS.gs.l.txt", "1\n2\n")
    with pytest.raises(DataFormatError, match=r"STS.input.l.txt:2: not valid utf-8"):
        read_sts_file(latin)
