"""Training data for contrastive recipes, as Hugging Face ``datasets`` (Arrow, memory-mapped: a
3M-line corpus is never a Python list).

``data.train`` may be
* a file: ``.txt`` (one sentence per line -> unsupervised), ``.csv``/``.tsv``/``.jsonl``/``.json``
  with 2–3 text columns (SimCSE's ``nli_for_simcse.csv``: ``sent0, sent1, hard_neg``), or
  ``.txt.gz``;
* a registry name: ``wiki1m`` (text), ``flickr30k-captions``/``flickr8k``/``coco-captions`` (the
  training-split captions as a text corpus);
* ``hf:<name>[:<config>][:<split>]`` — any Hugging Face dataset (columns chosen with ``data.columns``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

from capcse.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

CAPTION_SETS = ("flickr30k-captions", "flickr8k", "coco-captions")
TABULAR = {".csv": ",", ".tsv": "\t"}


def _text_dataset(path: Path):
    from datasets import load_dataset

    ds = load_dataset("text", data_files=str(path), split="train")
    before = len(ds)
    ds = ds.filter(lambda batch: [bool(t and t.strip()) for t in batch["text"]], batched=True)
    if len(ds) < before:
        logger.warning("%s: skipped %d empty line(s) of %d", path, before - len(ds), before)
    return ds


def _tabular_dataset(path: Path, columns: Sequence[str] | None):
    from datasets import load_dataset

    suffix = path.suffix.lower()
    if suffix in TABULAR:
        ds = load_dataset("csv", data_files=str(path), delimiter=TABULAR[suffix], split="train",
                          keep_default_na=False)
        first_data_line = 2  # header
    elif suffix in (".jsonl", ".json"):
        ds = load_dataset("json", data_files=str(path), split="train")
        first_data_line = 1
    else:
        raise ConfigError(f"{path}: unknown training file type {suffix!r} (txt, csv, tsv, jsonl, json)")
    cols = list(columns) if columns else [c for c in ds.column_names]
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise DataFormatError(path, 1, f"missing column(s) {missing}; the file has {ds.column_names}")
    if not 1 <= len(cols) <= 3:
        raise DataFormatError(path, 1, f"a SimCSE training table has 1-3 text columns "
                                       f"(sentence, positive, hard negative); got {cols} — choose with data.columns")
    ds = ds.select_columns(cols)
    _check_cells(ds, cols, path, first_data_line)
    return ds


def _check_cells(ds, cols: Sequence[str], path: Path, first_data_line: int) -> None:
    """Every cell must be a non-empty string; the first bad one is an error naming file and line
    (vectorised with pyarrow, so a 3M-row file is checked without Python loops)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = ds.data.table if hasattr(ds.data, "table") else ds.data
    bad = None
    for col in cols:
        column = table.column(col)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            raise DataFormatError(path, first_data_line, f"column {col!r} is {column.type}, not text")
        flags = pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_trim_whitespace(column), ""))
        bad = flags if bad is None else pc.or_kleene(bad, flags)
    n_bad = pc.sum(bad).as_py() or 0
    if n_bad:
        row = pc.index(bad, True).as_py()
        raise DataFormatError(path, row + first_data_line,
                              f"empty or missing text in row {row} ({n_bad} bad row(s) in all): "
                              f"{ {c: ds[row][c] for c in cols} }")


def _caption_corpus(name: str, data_dir):
    from datasets import Dataset

    from capcse.data.corpora import load_caption_table

    rows = load_caption_table(name, data_dir=data_dir)
    captions = [r.caption for r in rows if r.split == "train"]
    if not captions:
        raise ConfigError(f"{name}: no training-split captions found")
    return Dataset.from_dict({"text": captions})


def _registry_file(name: str, data_dir) -> Path:
    from capcse.data import resolve_dataset

    path = Path(resolve_dataset(name, data_dir=data_dir))
    if path.is_dir():
        texts = sorted(path.glob("*.txt"))
        if len(texts) != 1:
            raise ConfigError(f"{name}: expected one .txt corpus in {path}, found {[p.name for p in texts]}")
        path = texts[0]
    return path


def load_train_dataset(spec: str, *, fmt: str = "auto", columns: Sequence[str] | None = None,
                       limit: int | None = None, data_dir=None):
    """The training set named by ``spec`` (see the module docstring) as a ``datasets.Dataset``."""
    if spec.startswith("hf:"):
        from datasets import load_dataset

        parts = spec[3:].split(":")
        name, config, split = parts[0], (parts[1] or None) if len(parts) > 1 else None, \
            parts[2] if len(parts) > 2 else "train"
        ds = load_dataset(name, config, split=split)
        if columns:
            ds = ds.select_columns(list(columns))
    elif Path(spec).expanduser().exists():
        path = Path(spec).expanduser()
        is_text = fmt == "text" or (fmt == "auto" and (path.suffix == ".txt" or path.name.endswith(".txt.gz")))
        ds = _text_dataset(path) if is_text else _tabular_dataset(path, columns)
    elif spec in CAPTION_SETS:
        ds = _caption_corpus(spec, data_dir)
    else:
        try:
            path = _registry_file(spec, data_dir)
        except KeyError:
            raise ConfigError(f"training data {spec!r}: not a file, not hf:<name>, not a known data set") from None
        ds = _text_dataset(path)
    if limit is not None:
        ds = ds.select(range(min(int(limit), len(ds))))
    if len(ds) == 0:
        raise ConfigError(f"training data {spec!r} is empty")
    return ds


def nli_to_triplets(pairs: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """SimCSE's supervised data from NLI pairs: (premise, entailment hypothesis, contradiction
    hypothesis). Every entailment hypothesis of a premise gives one triplet; its hard negative is a
    contradiction hypothesis of the same premise (cycled when there are fewer contradictions).
    Premises lacking either label are dropped. Labels: entailment / contradiction (neutral ignored)."""
    by_premise: dict[str, tuple[list[str], list[str]]] = {}
    for premise, hypothesis, label in pairs:
        label = label.strip().lower()
        if label not in ("entailment", "contradiction"):
            continue
        ent, con = by_premise.setdefault(premise, ([], []))
        (ent if label == "entailment" else con).append(hypothesis)
    triplets = []
    for premise, (ent, con) in by_premise.items():
        if ent and con:
            triplets.extend((premise, e, con[i % len(con)]) for i, e in enumerate(ent))
    return triplets
