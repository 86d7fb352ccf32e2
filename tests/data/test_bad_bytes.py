"""Issue 16, item 1: every reader reports a byte sequence that is not UTF-8 as ``FILE:LINE: ...`` and an
empty file as a clear DataFormatError -- never a UnicodeDecodeError / datasets traceback, never an empty result.

Each case writes a small valid file with one bad byte (``\\xff``) on line 2 and reads it with the reader."""

from __future__ import annotations

import gzip
import re

import pytest

from capcse.errors import DataFormatError

BAD = b"\xff"


def _train(path):
    from capcse.train.data import load_train_dataset

    return load_train_dataset(str(path))


def _text_corpus(path):
    from capcse.data import read_text_corpus

    return list(read_text_corpus(path))


def _sts(path):
    from capcse.data import read_sts_file

    return read_sts_file(path)


def _nli(path):
    from capcse.data import load_nli_pairs

    return load_nli_pairs(path)


def _captions(path):
    from capcse.data import read_caption_table

    return read_caption_table(path)


def _image_text(path):
    from capcse.data.image_text import read_image_text_pairs

    return read_image_text_pairs(path, image_root=path.parent)


def _records(path):
    from capcse.data.linkage import read_records

    return read_records(path, check_images=False)


def _transfer_sst(path):
    from capcse.data.transfer import _read_sst

    return _read_sst(path, 2)


# (reader, file name, valid line 1, bad line 2 with {bad} standing for the byte)
CASES = [
    (_train, "corpus.txt", b"a sentence", b"caf" + BAD + b" au lait"),
    (_train, "corpus.txt.gz", b"a sentence", b"caf" + BAD),
    (_train, "pairs.csv", b"sent0,sent1", b"a," + BAD + b"b"),
    (_train, "pairs.tsv", b"sent0\tsent1", b"a\t" + BAD),
    (_train, "pairs.jsonl", b'{"sent0": "a", "sent1": "b"}', b'{"sent0": "' + BAD + b'", "sent1": "b"}'),
    (_text_corpus, "wiki.txt", b"a sentence", BAD),
    (_sts, "sts.tsv", b"sentence1\tsentence2\tscore", b"a\t" + BAD + b"\t1.0"),
    (_nli, "nli.tsv", b"sentence1\tsentence2\tgold_label", b"a\t" + BAD + b"\tentailment"),
    (_nli, "nli.jsonl", b'{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}', b'{"sentence1": "' + BAD + b'"}'),
    (_captions, "captions.tsv", b"image\tcaption\tsplit", b"1.jpg\t" + BAD + b"\ttrain"),
    (_image_text, "pairs.jsonl", b'{"image": "1.jpg", "caption": "a"}', b'{"image": "1.jpg", "caption": "' + BAD + b'"}'),
    (_image_text, "pairs.tsv", b"image\tcaption", b"1.jpg\t" + BAD),
    (_records, "records.csv", b"id,text,image,cluster_id,split", b"r1," + BAD + b",1.jpg,c1,train"),
    (_records, "records.jsonl", b'{"id": "r0", "text": "a", "image": "1.jpg", "cluster_id": "c", "split": "train"}',
     b'{"id": "r1", "text": "' + BAD + b'"}'),
    (_transfer_sst, "sst.txt", b"a sentence\t1", b"caf" + BAD + b"\t0"),
]
IDS = [f"{fn.__name__[1:]}-{name}" for fn, name, *_ in CASES]


def _write(path, data: bytes):
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.mark.parametrize("reader, name, line1, line2", CASES, ids=IDS)
def test_bad_bytes_name_file_and_line(tmp_path, reader, name, line1, line2):
    path = tmp_path / name
    _write(path, line1 + b"\n" + line2 + b"\n")
    with pytest.raises(DataFormatError) as info:
        reader(path)
    assert re.match(rf"{re.escape(str(path))}:2: not valid utf-8", str(info.value), re.I), str(info.value)
    assert info.value.line == 2


@pytest.mark.parametrize("reader, name", [c[:2] for c in CASES], ids=IDS)
def test_an_empty_file_is_a_clear_error(tmp_path, reader, name):
    path = tmp_path / name
    _write(path, b"")
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(path))}(:1)?: .*empty"):
        reader(path)
