"""Text corpora (wiki1m), NLI pairs (SNLI/MNLI/KorNLI/XNLI-ko, SentEval's SNLI) and caption tables (text only).

* :func:`read_text_corpus` streams one sentence per line (an iterator: it is used on multi-million-line files).
* :func:`load_nli_pairs` reads sentence1 / sentence2 / gold_label rows.
* :func:`load_caption_table` reads (image, caption, split) rows of Flickr30k, Flickr8k or COCO captions.

Rows that a format defines as unusable (SNLI's ``-`` no-consensus label, Flickr8k's bogus image name) are
skipped and counted in ``.skipped`` of the returned table; anything else malformed is a
:class:`~capcse.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Iterator, NamedTuple

from capcse.data._text import (decode, normalize_whitespace, read_bytes, read_lines, split_columns,
                               strip_trailing_blank)
from capcse.data.registry import FLICKR8K_BOGUS
from capcse.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)


class RowTable(list):
    """A list of rows that also says where they came from and what was skipped (reason -> count)."""

    def __init__(self, rows=(), *, name: str = "", source: str = "", skipped: dict[str, int] | None = None):
        super().__init__(rows)
        self.name = name
        self.source = source
        self.skipped: dict[str, int] = dict(skipped or {})

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


# --------------------------------------------------------------------------------------------- corpora
def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_text_corpus(path: str | os.PathLike, *, skip_empty: bool = True, encoding: str = "utf-8") -> Iterator[str]:
    """Stream the sentences of a one-sentence-per-line file (plain or ``.gz``), line ends removed.

    A generator: memory stays flat however long the file. Empty (whitespace-only) lines are skipped when
    ``skip_empty`` (their number is logged at the end); text is otherwise kept exactly. A byte sequence that
    is not valid ``encoding`` raises a DataFormatError naming the file and line; so does, once the file is
    read, an empty file or (``skip_empty``) one with only blank lines.
    """
    path = Path(path)
    n_empty = n_lines = 0
    with _open_binary(path) as fh:
        for n_lines, raw in enumerate(fh, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, n_lines, f"not valid {encoding} ({exc.reason})") from None
            line = line[:-1] if line.endswith("\n") else line
            line = line[:-1] if line.endswith("\r") else line
            if skip_empty and not line.strip():
                n_empty += 1
                continue
            yield line
    if n_lines == 0:
        raise DataFormatError(path, None, "empty file: no sentences")
    if n_empty == n_lines:
        raise DataFormatError(path, None, f"no sentences: all {n_lines} line(s) are blank")
    if n_empty:
        log.info("%s: skipped %d empty lines", path, n_empty)


def count_lines(path: str | os.PathLike) -> int:
    """Number of lines (a last line without a newline counts), read in binary chunks (fast on 1M lines)."""
    n, last = 0, b"\n"
    with _open_binary(Path(path)) as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


# --------------------------------------------------------------------------------------------- NLI
NLI_LABELS = ("entailment", "neutral", "contradiction")


class NLIPair(NamedTuple):
    sentence1: str
    sentence2: str
    label: str


def _nli_rows(path: Path, split: str | None) -> Iterator[tuple[Path, int, str | None, tuple[str, str, str]]]:
    """(file, line, problem or None, (sentence1, sentence2, raw label)) for every row of any NLI layout."""
    if path.is_dir():
        if split is None:
            raise ConfigError(f"{path} is a SentEval SNLI folder: give split= (train/dev/test)")
        files = [path / f"{k}.{split}" for k in ("s1", "s2", "labels")]
        cols = [read_lines(f) for f in files]
        if not len(cols[0]) == len(cols[1]) == len(cols[2]):
            raise DataFormatError(files[2], None, f"s1/s2/labels have {len(cols[0])}/{len(cols[1])}/{len(cols[2])} lines")
        for i, (a, b, lab) in enumerate(zip(*cols), start=1):
            yield files[2], i, None, (normalize_whitespace(a), normalize_whitespace(b), lab)
    elif path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz"):
        for i, line in enumerate(decode(read_bytes(path), path).split("\n"), start=1):
            if line.strip():
                try:
                    obj = json.loads(line)
                    yield path, i, None, (obj["sentence1"], obj["sentence2"], obj["gold_label"])
                except (ValueError, KeyError, TypeError) as exc:
                    yield path, i, f"not a JSON object with sentence1/sentence2/gold_label ({exc})", ("", "", "")
    else:
        lines = strip_trailing_blank(read_lines(path))
        if not lines:
            raise DataFormatError(path, 1, "empty file: expected a header line")
        header = lines[0].lstrip("\ufeff").split("\t")
        need = ("sentence1", "sentence2", "gold_label")
        if not set(need) <= set(header):
            raise DataFormatError(path, 1, f"header must name {', '.join(need)}; found {header}")
        i1, i2, il = (header.index(c) for c in need)
        for i, line in enumerate(lines[1:], start=2):
            cols = line.split("\t")
            if len(cols) != len(header):
                yield path, i, f"expected {len(header)} tab-separated columns, found {len(cols)}", ("", "", "")
            else:
                yield path, i, None, (cols[i1], cols[i2], cols[il])


def load_nli_pairs(path: str | os.PathLike, split: str | None = None, *, skip_malformed: bool = False) -> RowTable:
    """NLI sentence pairs as :class:`NLIPair` rows (sentence1, sentence2, gold label).

    ``path`` may be:

    * a TSV with a header naming ``sentence1``, ``sentence2`` and ``gold_label`` (KorNLI / XNLI-ko, the
      SNLI 1.0 / MultiNLI ``*.txt`` releases with their extra columns; ``.gz`` allowed);
    * a ``.jsonl`` file (SNLI/MultiNLI JSON lines with the same keys);
    * SentEval's ``downstream/SNLI`` folder (``s1.<split>``, ``s2.<split>``, ``labels.<split>``): give ``split``;
      its sentences are whitespace-normalised as SentEval's loader splits them (its files end in a space).

    Rows labelled ``-`` (no annotator consensus) are skipped and counted in ``.skipped["no gold label"]``.
    A malformed row (column count, bad JSON, unknown label) raises a DataFormatError naming file and line, or
    with ``skip_malformed=True`` is skipped and counted in ``.skipped["malformed"]``.
    """
    path = Path(path)
    skipped: Counter = Counter()
    rows: list[NLIPair] = []
    for where, lineno, problem, (a, b, label) in _nli_rows(path, split):
        label = label.strip() if problem is None else label
        if problem is None and label == "-":
            skipped["no gold label"] += 1
            continue
        if problem is None and label not in NLI_LABELS:
            problem = f"gold_label {label!r} is not one of {', '.join(NLI_LABELS)} or '-'"
        if problem is not None:
            if not skip_malformed:
                raise DataFormatError(where, lineno, problem)
            skipped["malformed"] += 1
            log.warning("%s:%d: skipped: %s", where, lineno, problem)
            continue
        rows.append(NLIPair(a, b, label))
    if not rows and not skipped:
        raise DataFormatError(path, None, "empty file: no NLI pairs")
    if skipped:
        log.info("%s: skipped %s", path, dict(skipped))
    return RowTable(rows, name=path.name, source=str(path), skipped=dict(skipped))


# --------------------------------------------------------------------------------------------- captions
class CaptionRow(NamedTuple):
    image: str  # image file name
    caption: str
    split: str | None  # None: the image is in no split list


_M30K_SPLITS = (("train", "train"), ("val", "val"), ("test_2016", "test"))


def _captions_flickr30k_tsv(path: Path) -> RowTable:
    lines = strip_trailing_blank(read_lines(path))
    if not lines or lines[0].lstrip("\ufeff").split("\t") != ["image", "split", "caption_no", "caption"]:
        raise DataFormatError(path, 1, "expected the header 'image\\tsplit\\tcaption_no\\tcaption'")
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        cols = line.split("\t")
        if len(cols) != 4:  # 155k rows: the checking helper only on the error path
            split_columns(line, path, i, 4)
        rows.append(CaptionRow(cols[0], cols[3], cols[1]))
    return RowTable(rows, name="flickr30k-captions", source=str(path))


def _captions_multi30k(folder: Path) -> RowTable:
    rows = []
    for raw_split, split in _M30K_SPLITS:
        images_file = folder / "image_splits" / f"{raw_split}_images.txt"
        images = strip_trailing_blank(read_lines(images_file))
        per_k = []
        for k in range(1, 6):
            f = folder / "raw" / f"{raw_split}.{k}.en.gz"
            caps = read_lines(f)
            if len(caps) != len(images):
                raise DataFormatError(f, min(len(caps), len(images)) + 1,
                                      f"{len(caps)} captions but {images_file} lists {len(images)} images")
            per_k.append(caps)
        for i, image in enumerate(images):
            rows.extend(CaptionRow(image, per_k[k][i], split) for k in range(5))
    return RowTable(rows, name="flickr30k-captions", source=str(folder))


def _captions_flickr8k(folder: Path) -> RowTable:
    split_of: dict[str, str] = {}
    for split in ("train", "dev", "test"):
        f = folder / f"Flickr_8k.{split}Images.txt"
        for i, name in enumerate(read_lines(f), start=1):
            if name.strip():
                if name.strip() in split_of:
                    raise DataFormatError(f, i, f"{name.strip()} is also in the {split_of[name.strip()]} list")
                split_of[name.strip()] = split
    token = folder / "Flickr8k.token.txt"
    rows, skipped = [], Counter()
    for i, line in enumerate(strip_trailing_blank(read_lines(token)), start=1):
        key, caption = split_columns(line, token, i, 2)
        image, sep, _ = key.partition("#")
        if not sep:
            raise DataFormatError(token, i, f"expected '<image>#<k>' in the first column, found {key!r}")
        if image == FLICKR8K_BOGUS:
            skipped[f"bogus image name {FLICKR8K_BOGUS}"] += 1
            continue
        rows.append(CaptionRow(image, caption, split_of.get(image)))
    if skipped:
        log.info("%s: skipped %s", token, dict(skipped))
    return RowTable(rows, name="flickr8k", source=str(folder), skipped=dict(skipped))


def _captions_tsv_with_header(path: Path) -> RowTable:
    """A TSV with a header naming image, caption and split (e.g. flickr8k_mini1000/captions.tsv)."""
    lines = strip_trailing_blank(read_lines(path))
    header = lines[0].lstrip("\ufeff").split("\t")
    ii, ic, isp = header.index("image"), header.index("caption"), header.index("split")
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        cols = split_columns(line, path, i, len(header))
        split = cols[isp] or None
        rows.append(CaptionRow(cols[ii], cols[ic], None if split in (None, "none") else split))
    return RowTable(rows, name=path.stem, source=str(path))


def _captions_coco_json(path: Path, split: str | None = None) -> list[CaptionRow]:
    """COCO caption JSON (``images`` + ``annotations``) or Karpathy's ``dataset_*.json`` (``images`` with
    ``sentences``). COCO captions are stripped of surrounding whitespace (many end in a space or newline)."""
    try:
        obj = json.loads(decode(read_bytes(path), path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("images"), list):
        raise DataFormatError(path, None, "expected a JSON object with an 'images' list")
    rows = []
    if "annotations" in obj:  # official COCO format
        try:
            names = {img["id"]: img["file_name"] for img in obj["images"]}
        except (KeyError, TypeError):
            raise DataFormatError(path, None, "every image needs 'id' and 'file_name'") from None
        for k, ann in enumerate(obj["annotations"]):
            try:
                image = names[ann["image_id"]]
                caption = ann["caption"]
            except KeyError as exc:
                raise DataFormatError(path, None, f"annotation #{k}: unknown image or missing key {exc}") from None
            rows.append(CaptionRow(image, caption.strip(), split))
        return rows
    for k, img in enumerate(obj["images"]):  # Karpathy format
        try:
            image, sents, img_split = img["filename"], img["sentences"], img.get("split")
            rows.extend(CaptionRow(image, s["raw"].strip(), img_split) for s in sents)
        except (KeyError, TypeError) as exc:
            raise DataFormatError(path, None, f"image #{k}: expected filename/sentences[].raw ({exc})") from None
    return rows


def _coco_folder(folder: Path) -> RowTable:
    rows = []
    files = [folder / f"captions_{s}.json" for s in ("train2017", "val2017")]
    files = [f for f in files if f.is_file()]
    if not files:
        raise DataFormatError(folder, None, "no captions_train2017.json or captions_val2017.json here")
    for f in files:
        rows.extend(_captions_coco_json(f, f.stem.removeprefix("captions_")))
    return RowTable(rows, name="coco-captions", source=str(folder))


def read_caption_table(path: str | os.PathLike) -> RowTable:
    """Read caption rows from a file or folder, its format recognised from what is there."""
    path = Path(path)
    if path.is_dir():
        if (path / "Flickr8k.token.txt").is_file():
            return _captions_flickr8k(path)
        if (path / "image_splits").is_dir() and (path / "raw").is_dir():
            return _captions_multi30k(path)
        if any((path / f"captions_{s}.json").is_file() for s in ("train2017", "val2017")):
            return _coco_folder(path)
        if (path / "captions.tsv").is_file():
            return _captions_tsv_with_header(path / "captions.tsv")
        raise DataFormatError(path, None, "no known caption layout here (Flickr8k token file, Multi30k "
                              "raw/ + image_splits/, COCO captions_*2017.json, captions.tsv)")
    if path.suffix == ".json":
        stem = path.stem
        split = stem.removeprefix("captions_") if stem.startswith("captions_") else None
        return RowTable(_captions_coco_json(path, split), name=stem, source=str(path))
    with _open_binary(path) as fh:
        first = decode(fh.readline(), path).lstrip("\ufeff").rstrip("\r\n")
    if not first.strip():
        raise DataFormatError(path, 1, "empty file or blank first line: expected a caption table header "
                                       "(image, split, caption ...)")
    header = first.split("\t")
    if header == ["image", "split", "caption_no", "caption"]:
        return _captions_flickr30k_tsv(path)
    if {"image", "caption", "split"} <= set(header):
        return _captions_tsv_with_header(path)
    raise DataFormatError(path, 1, f"unrecognised caption file header {header}")


def caption_counts(table: RowTable) -> dict[str, int]:
    """Captions per split (``unsplit``: images in no split list; ``skipped``: rows dropped when reading)."""
    counts = Counter(row.split if row.split is not None else "unsplit" for row in table)
    out = dict(counts)
    if table.n_skipped:
        out["skipped"] = table.n_skipped
    return out
