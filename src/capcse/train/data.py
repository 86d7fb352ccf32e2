"""Training data for contrastive recipes, as Hugging Face ``datasets`` (Arrow, memory-mapped: a
3M-line corpus is never a Python list).

``data.train`` may be
* a file: ``.txt`` (one sentence per line -> unsupervised; empty lines are skipped and counted),
  ``.csv``/``.tsv``/``.jsonl``/``.json`` with 1–3 text columns (SimCSE's ``nli_for_simcse.csv``:
  ``sent0, sent1, hard_neg``; a header line names the columns; TSV is unquoted, CSV uses standard
  quoting), any of them gzipped (``.gz``). A malformed row (wrong column count, empty text, bad JSON)
  is a DataFormatError naming the file and its line, and so is an empty file or one that is not valid
  UTF-8 (checked in one streaming pass before ``datasets`` reads it);
* a registry name: ``wiki1m`` (text), ``flickr30k-captions``/``flickr8k``/``coco-captions`` (the
  training-split captions as a text corpus);
* ``hf:<name>[:<config>][:<split>]`` — any Hugging Face dataset (columns chosen with ``data.columns``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

from capcse.data._text import check_text_file
from capcse.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

CAPTION_SETS = ("flickr30k-captions", "flickr8k", "coco-captions")
TABULAR = {".csv": ",", ".tsv": "\t"}
FILE_SUFFIXES = (".txt", ".gz", ".csv", ".tsv", ".jsonl", ".json")


def _text_dataset(path: Path):
    from datasets import load_dataset

    check_text_file(path, what="training text")  # empty / undecodable: FILE:LINE, not a datasets traceback
    ds = load_dataset("text", data_files=str(path), split="train")
    before = len(ds)
    ds = ds.filter(lambda batch: [bool(t and t.strip()) for t in batch["text"]], batched=True)
    if len(ds) == 0:
        raise DataFormatError(path, None, f"no training text: all {before} line(s) are blank")
    if len(ds) < before:
        logger.warning("%s: skipped %d empty line(s) of %d", path, before - len(ds), before)
    return ds


def _open_text(path: Path):
    import gzip

    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _tabular_kind(path: Path) -> str:
    name = path.name.lower()
    for ext in (".csv", ".tsv", ".jsonl", ".json"):
        if name.endswith(ext) or name.endswith(ext + ".gz"):
            return ext
    raise ConfigError(f"{path}: unknown training file type (txt, csv, tsv, jsonl, json; optionally .gz)")


def locate_bad_row(path: Path, cols: Sequence[str] | None = None) -> tuple[int, str] | None:
    """Scan a CSV/TSV/JSONL training file in Python and return ``(line, problem)`` for its first
    malformed row (wrong column count, missing or empty text, bad JSON; line -1: undecodable bytes), or
    None. Run only after the fast Arrow reader failed or found a bad cell, to name the exact line."""
    import csv
    import json

    kind = _tabular_kind(path)
    try:
        with _open_text(path) as fh:
            if kind in TABULAR:
                reader = csv.reader(fh, delimiter=TABULAR[kind],
                                    quoting=csv.QUOTE_MINIMAL if kind == ".csv" else csv.QUOTE_NONE)
                header = next(reader, None)
                if not header:
                    return 1, "empty file: expected a header line naming the columns"
                wanted = [header.index(c) for c in cols if c in header] if cols else list(range(len(header)))
                for row in reader:
                    if not row:
                        continue
                    if len(row) != len(header):
                        return reader.line_num, (f"expected {len(header)} columns ({', '.join(header)}), "
                                                 f"found {len(row)}")
                    empty = [header[k] for k in wanted if not row[k].strip()]
                    if empty:
                        return reader.line_num, f"empty text in column(s) {', '.join(empty)}"
            else:
                for lineno, line in enumerate(fh, start=1):
                    if lineno == 1 and line.lstrip().startswith("["):
                        return None  # a JSON array, not JSON lines: no per-line diagnosis
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError as exc:
                        return lineno, f"not valid JSON ({exc})"
                    if not isinstance(obj, dict):
                        return lineno, f"expected a JSON object, found {type(obj).__name__}"
                    for c in cols or list(obj):
                        value = obj.get(c)
                        if not isinstance(value, str) or not value.strip():
                            what = "missing" if c not in obj else repr(value)
                            return lineno, f"field {c!r} is {what}: expected non-empty text"
    except UnicodeDecodeError as exc:
        return -1, f"not valid UTF-8 ({exc.reason})"
    return None


def _tabular_dataset(path: Path, columns: Sequence[str] | None):
    import csv

    from datasets import load_dataset

    kind = _tabular_kind(path)
    check_text_file(path, what=f"{kind[1:]} rows")  # before datasets: pyarrow's JSON reader keeps bad bytes
    try:
        if kind in TABULAR:
            # TSV files (SNLI / MNLI / KorNLI style) are not quoted: a '"' is text, not a quote
            ds = load_dataset("csv", data_files=str(path), delimiter=TABULAR[kind], split="train",
                              keep_default_na=False,
                              quoting=csv.QUOTE_MINIMAL if kind == ".csv" else csv.QUOTE_NONE)
            first_data_line = 2  # header
        else:
            ds = load_dataset("json", data_files=str(path), split="train")
            first_data_line = 1
    except Exception as exc:  # pandas / pyarrow parse errors: name the line ourselves
        found = locate_bad_row(path, columns)
        if found is None:
            raise DataFormatError(path, None, f"cannot be read as {kind[1:]}: {exc}") from exc
        raise DataFormatError(path, found[0] if found[0] > 0 else None, found[1]) from None
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
        found = locate_bad_row(path, cols)  # the exact line and reason (quoted fields may span lines)
        line, problem = found if found else (row + first_data_line, "empty or missing text")
        raise DataFormatError(path, line if line > 0 else None,
                              f"{problem} ({n_bad} bad row(s) in all; data row {row}: "
                              f"{ {c: ds[row][c] for c in cols} })")


def _caption_corpus(name: str, data_dir):
    from datasets import Dataset

    from capcse.data.loaders import load_caption_table

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
    elif "/" in spec or "\\" in spec or Path(spec).suffix.lower() in FILE_SUFFIXES:
        raise ConfigError(f"training data {spec!r}: no such file (relative to {Path.cwd()}); give an existing "
                          "path with --set data.train=PATH (the recipe's comments say where its data comes from)")
    else:
        try:
            path = _registry_file(spec, data_dir)
        except ConfigError as exc:
            raise ConfigError(f"training data {spec!r}: not a file, not hf:<name>, and {exc}") from None
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


NLI_FORMATS = ("auto", "kornli", "tsv", "jsonl", "snli-senteval")


def _nli_source(source: str, fmt: str, split: str | None, data_dir) -> list[tuple[Path, str | None]]:
    """The NLI file(s) named by ``source``: a path (file, or SentEval's SNLI folder with ``split``) or a
    registry name (e.g. ``kornli-xnli`` with ``split`` dev/test)."""
    path = Path(source).expanduser()
    if not path.exists():
        if "/" in source or Path(source).suffix:
            raise ConfigError(f"NLI file {source!r}: no such file")
        from capcse.data import resolve_dataset

        path = Path(resolve_dataset(source, data_dir=data_dir))
    if path.is_dir():
        if any(path.glob("labels.*")) or fmt == "snli-senteval":
            if split is None:
                raise ConfigError(f"{path} is SentEval's SNLI folder: give --split (train/dev/test)")
            return [(path, split)]
        files = sorted(p for p in path.iterdir() if p.suffix in (".tsv", ".txt", ".jsonl", ".gz")
                       and (split is None or f".{split}." in p.name or f"_{split}." in p.name))
        if not files:
            raise ConfigError(f"{path}: no NLI file{f' for split {split!r}' if split else ''} in this folder")
        return [(f, None) for f in files]
    if fmt == "snli-senteval":
        raise ConfigError(f"{path}: --format snli-senteval takes SentEval's SNLI folder (s1.*, s2.*, labels.*)")
    is_jsonl = path.name.endswith((".jsonl", ".jsonl.gz"))
    if fmt == "jsonl" and not is_jsonl:
        raise ConfigError(f"{path}: --format jsonl needs a .jsonl file")
    if fmt in ("kornli", "tsv") and is_jsonl:
        raise ConfigError(f"{path}: --format {fmt} takes a tab-separated file with a header, not JSON lines")
    return [(path, None)]


def triplets_from_nli(sources: Sequence[str], *, fmt: str = "auto", split: str | None = None, data_dir=None,
                      skip_malformed: bool = False) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """SimCSE triplets (premise, entailment, contradiction) from NLI pair files (SNLI/MNLI ``.txt`` or
    ``.jsonl`` releases, KorNLI/XNLI-ko TSV, SentEval's SNLI folder), read by
    :func:`capcse.data.load_nli_pairs`. Returns the triplets and counts for the report."""
    from capcse.data import load_nli_pairs

    if fmt not in NLI_FORMATS:
        raise ConfigError(f"unknown NLI format {fmt!r}; choose {', '.join(NLI_FORMATS)}")
    pairs: list[tuple[str, str, str]] = []
    stats = {"files": 0, "pairs": 0, "skipped_no_gold_label": 0, "skipped_malformed": 0}
    for source in sources:
        for path, file_split in _nli_source(source, fmt, split, data_dir):
            table = load_nli_pairs(path, file_split, skip_malformed=skip_malformed)
            stats["files"] += 1
            stats["pairs"] += len(table)
            skipped = getattr(table, "skipped", {}) or {}
            stats["skipped_no_gold_label"] += int(skipped.get("no gold label", 0))
            stats["skipped_malformed"] += int(skipped.get("malformed", 0))
            pairs.extend((p.sentence1, p.sentence2, p.label) for p in table)
    triplets = nli_to_triplets(pairs)
    stats["premises"] = len({p for p, _, _ in pairs})
    stats["premises_used"] = len({t[0] for t in triplets})
    stats["triplets"] = len(triplets)
    return triplets, stats


def write_triplets(path: str | Path, triplets: Iterable[tuple[str, str, str]]) -> Path:
    """Write SimCSE's ``nli_for_simcse.csv`` layout (header ``sent0,sent1,hard_neg``), atomically."""
    import csv

    from capcse.io import atomic_open

    with atomic_open(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["sent0", "sent1", "hard_neg"])
        writer.writerows(triplets)
    return Path(path)
