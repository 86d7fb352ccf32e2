"""Transfer-task loaders: SentEval's counts, labels, encodings and header handling; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from capcse.data import TransferData, load_transfer
from capcse.data.transfer import read_transfer
from capcse.errors import DataFormatError

pytestmark = pytest.mark.usefixtures("isolated_data_env")

# README / SOURCES.txt: MR 5331+5331, CR 2407+1368, SUBJ 5000+5000, MPQA 3312+7294, SST2 67349/872/1821,
# SST5 8544/1101/2210, TREC 5452/500, MRPC 4076/1725
EXPECTED = {
    "mr": {"all": 10662}, "cr": {"all": 3775}, "subj": {"all": 10000}, "mpqa": {"all": 10606},
    "sst2": {"train": 67349, "dev": 872, "test": 1821}, "sst5": {"train": 8544, "dev": 1101, "test": 2210},
    "trec": {"train": 5452, "test": 500}, "mrpc": {"train": 4076, "test": 1725},
}
POSITIVES = {"mr": 5331, "cr": 2407, "subj": 5000, "mpqa": 3312}  # label-1 items (SUBJ: objective)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_counts_and_labels(data_dir, name):
    d = load_transfer(name, data_dir=data_dir)
    assert isinstance(d, TransferData) and d.name == name
    assert {s: len(items) for s, (items, _) in d.splits.items()} == EXPECTED[name]
    for items, labels in d.splits.values():
        assert labels.dtype == np.int64 and len(labels) == len(items)
        assert labels.min() >= 0 and labels.max() == d.n_classes - 1
    assert d.pairs == (name == "mrpc")
    assert len(d.label_names) == d.n_classes
    if name in POSITIVES:  # SentEval: label-1 file first, then label 0
        items, labels = d.splits["all"]
        assert labels.sum() == POSITIVES[name]
        assert labels[: POSITIVES[name]].all() and not labels[POSITIVES[name]:].any()


def test_binary_reads_like_senteval(data_dir):
    """MR: latin-1, splitlines, whitespace tokens re-joined; CR/MPQA keep their empty lines as SentEval does."""
    pos = (data_dir / "downstream/MR/rt-polarity.pos").read_text(encoding="latin-1").splitlines()
    d = load_transfer("mr", data_dir=data_dir)
    assert d.splits["all"][0][: len(pos)] == [" ".join(line.split()) for line in pos]
    cr = load_transfer("cr", data_dir=data_dir)
    assert sum(1 for s in cr.splits["all"][0] if s == "") == 4 and cr.notes
    mpqa = load_transfer("mpqa", data_dir=data_dir)
    assert sum(1 for s in mpqa.splits["all"][0] if s == "") == 3


def test_trec_latin1_and_labels(data_dir):
    raw = (data_dir / "downstream/TREC/train_5500.label").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the quirk: one latin-1 byte
    d = load_transfer("trec", data_dir=data_dir)
    sents, labels = d.splits["train"]
    assert sents[0] == "How did serfdom develop in and then leave Russia ?" and d.label_names[labels[0]] == "DESC"
    bad_line = next(i for i, line in enumerate(raw.split(b"\n")) if any(b > 127 for b in line))
    assert any(ord(c) > 127 for c in sents[bad_line])  # decoded as latin-1, nothing lost
    assert np.bincount(d.splits["test"][1]).tolist() == [9, 138, 94, 65, 81, 113]


def test_mrpc_pairs_and_header(data_dir):
    d = load_transfer("mrpc", data_dir=data_dir)
    pairs, labels = d.splits["train"]
    assert isinstance(pairs[0], tuple) and len(pairs[0]) == 2
    assert pairs[0][0].startswith("Amrozi accused his brother") and labels[0] == 1
    assert np.bincount(labels).tolist() == [1323, 2753]


def test_sst_forms(data_dir):
    sst2 = load_transfer("sst2", data_dir=data_dir)
    assert sst2.splits["train"][0][0] == "hide new secretions from the parental units"
    assert sst2.splits["train"][1][0] == 0
    sst5 = load_transfer("sst5", data_dir=data_dir)
    assert sst5.n_classes == 5 and set(np.unique(sst5.splits["test"][1])) == {0, 1, 2, 3, 4}


# ---------------------------------------------------------------------------------------------- bad input
_MRPC_HEADER = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
_GOOD = {
    "trec": {"TREC_10.label": "NUM:date When was it ?\n", "train_5500.label": "DESC:manner How ?\n"},
    "sst2": {f"sentiment-{s}": "good film\t1\n" for s in ("train", "dev", "test")},
    "mrpc": {f"msr_paraphrase_{s}.txt": _MRPC_HEADER + "1\t1\t2\ta\tb\n" for s in ("train", "test")},
}
BAD_CASES = [  # (task, file, its content, the error)
    ("trec", "train_5500.label", "DESC:manner How ?\nFOO:bar What ?\n", r"train_5500.label:2: unknown TREC class 'FOO'"),
    ("trec", "train_5500.label", "DESC:manner How ?\nno colon here\n", r"train_5500.label:2: expected 'COARSE:fine"),
    ("trec", "TREC_10.label", "NUM:date\n", r"TREC_10.label:1: no question text"),
    ("sst2", "sentiment-dev", "good film\t1\nbad film\tx\n", r"sentiment-dev:2: label 'x' is not an integer"),
    ("sst2", "sentiment-dev", "good film\t3\n", r"sentiment-dev:1: label 3 outside 0..1"),
    ("sst2", "sentiment-dev", "no label column\n", r"sentiment-dev:1: expected 2 tab-separated columns, found 1"),
    ("mrpc", "msr_paraphrase_train.txt", _MRPC_HEADER + "1\t1\t2\ta\tb\n0\t3\t4\tonly three\n",
     r"msr_paraphrase_train.txt:3: expected 5 tab-separated columns"),
    ("mrpc", "msr_paraphrase_train.txt", "1\t1\t2\ta\tb\n", r"msr_paraphrase_train.txt:1: expected the MRPC header"),
    ("mrpc", "msr_paraphrase_test.txt", _MRPC_HEADER + "2\t1\t2\ta\tb\n",
     r"msr_paraphrase_test.txt:2: quality label '2' is not 0 or 1"),
]


def _write_task(folder, task, **override):
    for name, text in {**_GOOD[task], **override}.items():
        (folder / name).write_text(text, encoding="latin-1" if task == "trec" else "utf-8")


@pytest.mark.parametrize("task,fname,content,error", BAD_CASES)
def test_bad_input_names_file_and_line(tmp_path, task, fname, content, error):
    _write_task(tmp_path, task, **{fname: content})
    with pytest.raises(DataFormatError, match=error):
        read_transfer(task, tmp_path)


def test_small_files_read(tmp_path):
    _write_task(tmp_path, "mrpc", **{"msr_paraphrase_train.txt": _MRPC_HEADER + "1\t1\t2\t a  b \tc\n"})
    assert read_transfer("mrpc", tmp_path).splits["train"][0] == [("a b", "c")]
    _write_task(tmp_path, "trec", **{"TREC_10.label": "LOC:city Where is caf\xe9  Paris ?\n"})
    d = read_transfer("trec", tmp_path)
    assert d.splits["test"][0] == ["Where is caf\xe9 Paris ?"] and d.splits["test"][1].tolist() == [4]
