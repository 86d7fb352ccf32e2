"""STS-format data: STS12-16, STS-B, SICK-R, KorSTS, and any STS-format file.

Two text variants of the English STS sets exist:

* ``"senteval"`` — SentEval's ``downstream/STS`` copies (Moses-tokenised, lower-cased). SentEval splits every
  sentence on whitespace and the SimCSE/SentEval batchers re-join the tokens with single spaces, so this
  variant returns ``" ".join(sentence.split())`` — the exact string such a batcher hands to the encoder.
* ``"raw"`` — the original cased, untokenised releases (``sts_raw/``): text exactly as released, only the
  line end removed.

Both variants give the same pairs with the same gold scores in the same (file) order. Unlike SentEval the
pairs are not sorted by length (the order does not change any correlation). STS15/16 pairs whose gold-score
line is empty are skipped exactly as SentEval skips them (counted in :attr:`STSData.skipped`). SICK is read
from SentEval's copy (whitespace-normalised like the senteval variant); KorSTS text is kept as released.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capcse.data._text import (normalize_whitespace, parse_score, read_lines, split_columns,
                               strip_trailing_blank)
from capcse.data.registry import DatasetSpec, Layout, sts_file_names
from capcse.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

class IncompleteDataWarning(UserWarning):
    """A data copy holds fewer (or more) items than the release: scores on it are not the published task's."""


_SICK_FILES = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}


@dataclass
class STSData:
    """One STS subset: sentence pairs with float64 gold scores, read from ``source``."""

    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    source: str
    skipped: int = 0  # pairs dropped because their gold-score line is empty (STS15/16)

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if not (len(self.sentences1) == len(self.sentences2) == len(self.scores)):
            raise ValueError(
                f"STSData {self.name}: {len(self.sentences1)}/{len(self.sentences2)}/{len(self.scores)} "
                "sentences1/sentences2/scores"
            )

    def __len__(self) -> int:
        return len(self.scores)


def _text(s: str, normalise: bool) -> str:
    return normalize_whitespace(s) if normalise else s


def read_sts_pair_files(input_path: str | Path, gs_path: str | Path, *, name: str | None = None,
                        normalise: bool = False, n_columns: int = 2) -> STSData:
    """An STS.input / STS.gs file pair (SemEval 2012-2016 format).

    Every input line has ``n_columns`` tab-separated columns (2; the raw STS 2016 files have 4: the two
    sentences and their sources); line *i* of the gold file scores line *i* of the input. Pairs whose gold
    line is empty are skipped (SentEval: ``raw_scores != ''``).
    """
    input_path, gs_path = Path(input_path), Path(gs_path)
    inputs = read_lines(input_path)
    golds = read_lines(gs_path)
    if len(inputs) != len(golds):
        raise DataFormatError(
            gs_path, min(len(inputs), len(golds)) + 1,
            f"{len(golds)} gold-score lines but {input_path} has {len(inputs)} input lines",
        )
    s1, s2, scores, skipped = [], [], [], 0
    for i, (line, gold) in enumerate(zip(inputs, golds), start=1):
        cols = split_columns(line, input_path, i, n_columns)
        if gold == "":
            skipped += 1
            continue
        scores.append(parse_score(gold, gs_path, i, "gold score"))
        s1.append(_text(cols[0], normalise))
        s2.append(_text(cols[1], normalise))
    return STSData(name or input_path.name, s1, s2, np.array(scores, dtype=np.float64), str(input_path), skipped)


def read_stsb_csv(path: str | Path, *, name: str = "stsb", normalise: bool = False) -> STSData:
    """An STS-Benchmark ``sts-*.csv``: tab-separated, score / sentence1 / sentence2 in columns 5-7.

    A few lines of the original release carry two extra source columns after sentence2; like SentEval only
    columns 5-7 are read. Fewer than 7 columns is an error.
    """
    path = Path(path)
    s1, s2, scores = [], [], []
    for i, line in enumerate(strip_trailing_blank(read_lines(path)), start=1):
        cols = split_columns(line.strip() if normalise else line, path, i, 7, at_least=True)
        scores.append(parse_score(cols[4], path, i))
        s1.append(_text(cols[5], normalise))
        s2.append(_text(cols[6], normalise))
    return STSData(name, s1, s2, np.array(scores, dtype=np.float64), str(path))


def read_header_tsv(path: str | Path, *, name: str, s1_col: str, s2_col: str, score_col: str,
                    normalise: bool = False) -> STSData:
    """A TSV with a header line naming its columns (SICK: sentence_A/sentence_B/relatedness_score;
    KorSTS: sentence1/sentence2/score). Every row must have as many columns as the header."""
    path = Path(path)
    lines = strip_trailing_blank(read_lines(path))
    if not lines:
        raise DataFormatError(path, 1, "empty file: expected a header line")
    header = lines[0].lstrip("\ufeff").strip().split("\t")
    missing = [c for c in (s1_col, s2_col, score_col) if c not in header]
    if missing:
        raise DataFormatError(path, 1, f"header lacks column(s) {', '.join(missing)}; found {header}")
    i1, i2, isc = header.index(s1_col), header.index(s2_col), header.index(score_col)
    s1, s2, scores = [], [], []
    for i, line in enumerate(lines[1:], start=2):
        cols = split_columns(line.strip() if normalise else line, path, i, len(header))
        scores.append(parse_score(cols[isc].strip(), path, i))
        s1.append(_text(cols[i1], normalise))
        s2.append(_text(cols[i2], normalise))
    return STSData(name, s1, s2, np.array(scores, dtype=np.float64), str(path))


def read_sts_split(spec: DatasetSpec, layout: Layout, folder: str | Path, split: str) -> dict[str, STSData]:
    """Read one split of an STS data set from an already located folder (``layout`` says the variant)."""
    folder = Path(folder)
    if split not in spec.splits:
        raise ConfigError(f"{spec.name} has splits {', '.join(spec.splits)}; not {split!r}")
    variant = layout.variant
    if spec.name in ("sts12", "sts13", "sts14", "sts15", "sts16"):
        n_columns = 4 if (spec.name == "sts16" and variant == "raw") else 2
        out = {}
        for subset in spec.subsets:
            inp, gs = sts_file_names(spec.name, subset, variant)
            out[subset] = read_sts_pair_files(folder / inp, folder / gs, name=subset,
                                              normalise=variant == "senteval", n_columns=n_columns)
        return out
    if spec.name == "stsb":
        return {"stsb": read_stsb_csv(folder / f"sts-{split}.csv", normalise=variant == "senteval")}
    if spec.name == "sickr":
        return {"sickr": read_header_tsv(folder / _SICK_FILES[split], name="sickr", s1_col="sentence_A",
                                         s2_col="sentence_B", score_col="relatedness_score", normalise=True)}
    if spec.name == "korsts":
        return {"korsts": read_header_tsv(folder / f"sts-{split}.tsv", name="korsts", s1_col="sentence1",
                                          s2_col="sentence2", score_col="score")}
    raise ConfigError(f"{spec.name} is not an STS data set")  # pragma: no cover


def check_complete(spec: DatasetSpec, layout: Layout, split: str, data: dict[str, STSData]) -> str | None:
    """Compare the pairs read with the release's count (what ``capcse data list`` verifies); on a
    difference issue an :class:`IncompleteDataWarning` (``capcse eval`` repeats it under its table and
    records it in results.json) and return its message."""
    expected = None if layout.partial else spec.expected_for(layout).get(split)
    n = sum(len(d) for d in data.values())
    if expected is None or n == expected:
        return None
    what = f"{expected - n} missing" if n < expected else f"{n - expected} extra"
    sources = sorted({d.source for d in data.values()})
    msg = (f"{spec.name} {split}: this copy has {n} of the release's {expected} pairs ({what}) in "
           f"{', '.join(sources)}; its scores are not the published task's (see capcse data list)")
    log.warning("WARNING: %s", msg)
    warnings.warn(msg, IncompleteDataWarning, stacklevel=3)
    return msg


def read_sts_file(path: str | Path, *, name: str | None = None, normalise: bool = False) -> STSData:
    """Any STS-format file, format detected from its name and first line:

    * ``STS.input.X.txt`` / ``STS2016.input.X.txt`` (the gold file ``STS.gs.X.txt`` beside it);
    * a TSV with a header naming sentence1/sentence2/score (KorSTS) or sentence_A/sentence_B/
      relatedness_score (SICK);
    * a header-less STS-B csv (>= 7 columns: score in 5, sentences in 6-7);
    * a header-less 3-column TSV: sentence1, sentence2, score.
    """
    path = Path(path)
    fname = path.name
    for prefix in ("STS2016.input.", "STS.input."):
        if fname.startswith(prefix):
            gs = path.with_name(fname.replace(".input.", ".gs.", 1))
            n_columns = len(read_lines(path)[0].split("\t")) if path.stat().st_size else 2
            return read_sts_pair_files(path, gs, name=name or fname[len(prefix):].removesuffix(".txt"),
                                       normalise=normalise, n_columns=n_columns)
    lines = read_lines(path)
    if not lines:
        raise DataFormatError(path, 1, "empty file")
    header = lines[0].lstrip("\ufeff").strip().split("\t")
    label = name or path.stem
    if {"sentence_A", "sentence_B", "relatedness_score"} <= set(header):
        return read_header_tsv(path, name=label, s1_col="sentence_A", s2_col="sentence_B",
                               score_col="relatedness_score", normalise=normalise)
    if {"sentence1", "sentence2", "score"} <= set(header):
        return read_header_tsv(path, name=label, s1_col="sentence1", s2_col="sentence2", score_col="score",
                               normalise=normalise)
    if len(header) >= 7:
        return read_stsb_csv(path, name=label, normalise=normalise)
    if len(header) == 3:
        s1, s2, scores = [], [], []
        for i, line in enumerate(strip_trailing_blank(lines), start=1):
            a, b, sc = split_columns(line, path, i, 3)
            scores.append(parse_score(sc, path, i))
            s1.append(_text(a, normalise))
            s2.append(_text(b, normalise))
        return STSData(label, s1, s2, np.array(scores, dtype=np.float64), str(path))
    raise DataFormatError(path, 1, f"unrecognised STS format ({len(header)} columns in the first line)")
