"""SentEval's transfer tasks: MR, CR, SUBJ, MPQA, SST2 (SST5), TREC, MRPC.

Read as SentEval's loaders read them (senteval/binary.py, sst.py, trec.py, mrpc.py): the same files, encodings,
columns, label codes, header handling and item order. Sentences are SentEval's whitespace-split tokens
re-joined with single spaces (:func:`capcse.data._text.normalize_whitespace`). Like SentEval, the empty lines of
CR (4) and MPQA (3) are kept as empty sentences: the item counts then equal SentEval's (3775 and 10606).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from capcse.data._text import normalize_whitespace, read_lines, require_rows, split_columns, strip_trailing_blank
from capcse.data.registry import get_spec
from capcse.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

TREC_LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
_BINARY = {  # name -> (folder-relative file of label 1, file of label 0), SentEval's order: label-1 items first
    "mr": ("rt-polarity.pos", "rt-polarity.neg"),
    "cr": ("custrev.pos", "custrev.neg"),
    "subj": ("subj.objective", "subj.subjective"),
    "mpqa": ("mpqa.pos", "mpqa.neg"),
}


@dataclass
class TransferData:
    """A transfer task: ``splits[split] = (items, labels)``; items are sentences, or (s1, s2) pairs for MRPC."""

    name: str
    n_classes: int
    splits: dict[str, tuple[list, np.ndarray]]
    pairs: bool
    label_names: tuple[str, ...] = ()
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(items) for items, _ in self.splits.values())


def _read_binary(path: Path) -> list[str]:
    # SentEval: io.open(fpath, encoding='latin-1').read().splitlines(), then line.split()
    return [normalize_whitespace(line) for line in require_rows(read_lines(path, encoding="latin-1"), path, "sentences")]


def _read_sst(path: Path, n_classes: int) -> tuple[list[str], np.ndarray]:
    sentences, labels = [], []
    for i, line in enumerate(require_rows(strip_trailing_blank(read_lines(path)), path, "labelled sentences"), start=1):
        line = line.strip()
        if n_classes == 2:  # "<sentence>\t<label>"
            text, label = split_columns(line, path, i, 2)
        else:  # "<label> <sentence>"
            parts = line.split(" ", 1)
            if len(parts) != 2:
                raise DataFormatError(path, i, "expected '<label> <sentence>'")
            label, text = parts
        try:
            y = int(label)
        except ValueError:
            raise DataFormatError(path, i, f"label {label!r} is not an integer") from None
        if not 0 <= y < n_classes:
            raise DataFormatError(path, i, f"label {y} outside 0..{n_classes - 1}")
        sentences.append(normalize_whitespace(text))
        labels.append(y)
    return sentences, np.array(labels, dtype=np.int64)


def _read_trec(path: Path) -> tuple[list[str], np.ndarray]:
    # SentEval: latin-1; "COARSE:fine question ..." -> label COARSE, text after the first space
    sentences, labels = [], []
    for i, line in enumerate(require_rows(strip_trailing_blank(read_lines(path, encoding="latin-1")), path,
                                          "labelled questions"), start=1):
        line = line.strip()
        if ":" not in line:
            raise DataFormatError(path, i, "expected 'COARSE:fine question'")
        target, rest = line.split(":", 1)
        if target not in TREC_LABELS:
            raise DataFormatError(path, i, f"unknown TREC class {target!r} (expected one of {', '.join(TREC_LABELS)})")
        parts = rest.split(" ", 1)
        if len(parts) != 2:
            raise DataFormatError(path, i, "no question text after the fine label")
        sentences.append(normalize_whitespace(parts[1]))
        labels.append(TREC_LABELS.index(target))
    return sentences, np.array(labels, dtype=np.int64)


def _read_mrpc(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    # SentEval: header skipped; columns Quality, #1 ID, #2 ID, #1 String, #2 String
    lines = strip_trailing_blank(read_lines(path))
    if not lines or not lines[0].lstrip("\ufeff").startswith("Quality"):
        raise DataFormatError(path, 1, "expected the MRPC header line 'Quality\\t#1 ID\\t#2 ID\\t#1 String\\t#2 String'")
    pairs, labels = [], []
    for i, line in enumerate(lines[1:], start=2):
        cols = split_columns(line.strip(), path, i, 5)
        if cols[0] not in ("0", "1"):
            raise DataFormatError(path, i, f"quality label {cols[0]!r} is not 0 or 1")
        pairs.append((normalize_whitespace(cols[3]), normalize_whitespace(cols[4])))
        labels.append(int(cols[0]))
    return pairs, np.array(labels, dtype=np.int64)


def read_transfer(name: str, folder: str | Path) -> TransferData:
    """Read a transfer task from its SentEval folder (e.g. ``downstream/MR``)."""
    spec = get_spec(name)
    if spec.kind != "transfer":
        raise ConfigError(f"{name!r} is not a transfer task")
    folder = Path(folder)
    notes: list[str] = []
    if spec.name in _BINARY:
        pos_file, neg_file = _BINARY[spec.name]
        pos, neg = _read_binary(folder / pos_file), _read_binary(folder / neg_file)
        items = pos + neg
        labels = np.array([1] * len(pos) + [0] * len(neg), dtype=np.int64)
        n_empty = sum(1 for s in items if not s)
        if n_empty:
            notes.append(f"{n_empty} empty lines kept as empty sentences (as SentEval keeps them)")
            log.info("%s: %s", spec.name, notes[-1])
        splits = {"all": (items, labels)}
    elif spec.name in ("sst2", "sst5"):
        splits = {s: _read_sst(folder / f"sentiment-{s}", spec.n_classes) for s in ("train", "dev", "test")}
    elif spec.name == "trec":
        splits = {"train": _read_trec(folder / "train_5500.label"), "test": _read_trec(folder / "TREC_10.label")}
    elif spec.name == "mrpc":
        splits = {"train": _read_mrpc(folder / "msr_paraphrase_train.txt"),
                  "test": _read_mrpc(folder / "msr_paraphrase_test.txt")}
    else:  # pragma: no cover
        raise ConfigError(f"no reader for {name!r}")
    return TransferData(spec.name, spec.n_classes, splits, pairs=spec.name == "mrpc",
                        label_names=spec.label_names, source=str(folder), notes=notes)
