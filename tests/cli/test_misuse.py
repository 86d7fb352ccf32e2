"""Issue 16, item 6: misuse of the CLI ends in ONE line ``capcse COMMAND: error: ...`` and a non-zero exit,
never a traceback. Add a case by appending a :class:`Misuse` to ``CASES``: the files to write (bytes, paths
relative to the test's folder), the argv (``{tmp}``: that folder, ``{tiny}``: a tiny BERT folder, ``{data}``:
the shared data folder) and a regular expression the error line must contain. Progress bars that ran before
the error may precede it on stderr; the error is the last line and the only one of its kind."""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest

from capcse.cli import main


class Misuse(NamedTuple):
    id: str
    argv: str
    error: str
    files: dict[str, bytes] = {}
    untouched: str | None = None  # a path (relative to tmp) that must not exist afterwards


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg()

TINY_TRAIN = ("train simcse-unsup-bert-base --output {tmp}/run --set model.name={tiny} --set train.report_to=none "
              "--set eval.during=none --set eval.final=none --set train.device=cpu")

CASES = [
    Misuse("train-negative-learning-rate", TINY_TRAIN + " --set data.train={tmp}/ok.txt --set train.learning_rate=-1",
           r"train\.learning_rate must be > 0, got -1\.0$", {"ok.txt": b"a sentence\n"}, untouched="run"),
    Misuse("train-zero-batch-size", TINY_TRAIN + " --set data.train={tmp}/ok.txt --set train.batch_size=0",
           r"train\.batch_size must be >= 1, got 0$", {"ok.txt": b"a sentence\n"}, untouched="run"),
    Misuse("train-empty-text-file", TINY_TRAIN + " --set data.train={tmp}/empty.txt",
           r"{tmp}/empty\.txt: empty file \(0 bytes\): no training text$", {"empty.txt": b""}),
    Misuse("train-blank-text-file", TINY_TRAIN + " --set data.train={tmp}/blank.txt",
           r"{tmp}/blank\.txt: no training text: all 3 line\(s\) are blank$", {"blank.txt": b"\n  \n\t\n"}),
    Misuse("train-invalid-utf8", TINY_TRAIN + " --set data.train={tmp}/latin1.txt",
           r"{tmp}/latin1\.txt:2: not valid utf-8 \(invalid continuation byte at byte 3 of the line\)$",
           {"latin1.txt": "first line\ncafé au lait\n".encode("latin-1")}),
    Misuse("train-invalid-utf8-csv", TINY_TRAIN + " --set data.train={tmp}/pairs.csv",
           r"{tmp}/pairs\.csv:3: not valid utf-8", {"pairs.csv": b"sent0,sent1\na,b\nc,\xe9t\xe9\n"}),
    Misuse("train-into-non-empty-folder", TINY_TRAIN + " --set data.train={tmp}/ok.txt",
           r"output dir {tmp}/run is not empty \(old\.txt\): continue that run with --resume, or replace it "
           r"with --overwrite$", {"ok.txt": b"a sentence\n", "run/old.txt": b"x"}),
    Misuse("train-resume-without-run", "train --resume --output {tmp}/nothing",
           r"--resume: {tmp}/nothing/recipe\.yaml not found"),
    Misuse("train-unknown-recipe", "train no-such-recipe", r"no recipe 'no-such-recipe'"),
    Misuse("pretrain-negative-learning-rate", "pretrain mlm-bert-mini --output {tmp}/mlm --set train.learning_rate=-1",
           r"train\.learning_rate must be > 0, got -1\.0$", untouched="mlm"),
    # the other four commands of issue 16 item 6
    Misuse("link-cluster-on-a-records-csv", "link cluster {tmp}/records.csv --threshold 0.1 --out {tmp}/c.csv",
           r"{tmp}/records\.csv", {"records.csv": b"record_id,image,text,cluster_id,split\nr0,a.jpg,text,c0,test\n"},
           untouched="c.csv"),
    Misuse("link-train-unknown-config", "link train {tmp}/f.npz --out {tmp}/o --config configs/no-such-recipe.yaml",
           r"no recipe"),
    Misuse("caption-model-folder-missing", "caption --images {tmp}/one --out {tmp}/cap --device cpu --quiet "
           "--model /nonexistent", r"--model /nonexistent: no such model folder", {"one/a.jpg": JPEG}),
    Misuse("caption-empty-image-folder", "caption --images {tmp}/empty --out {tmp}/cap --device cpu --quiet",
           r"no images in ", {"empty/notes.txt": b"not an image\n"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_misuse_is_one_error_line(case, tmp_path, tiny_bert_path, data_dir, capsys):
    for rel, content in case.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)
    fill = {"tmp": str(tmp_path), "tiny": str(tiny_bert_path), "data": str(data_dir)}
    argv = case.argv.format(**fill).split()
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith(f"capcse {argv[0]}: error: ")]
    assert code != 0
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    assert re.search(case.error.replace("{tmp}", re.escape(str(tmp_path))), errors[0]), errors[0]
    if case.untouched:
        assert not (tmp_path / case.untouched).exists()
