"""Image–caption pairs for multimodal training (MCSE / DALR): caption, image file, image id, split.

:func:`read_image_text_pairs` accepts

* a registered caption set (``flickr8k``, ``flickr30k-captions``, ``coco-captions``; the text comes
  from :func:`capcse.data.loaders.load_caption_table`) together with ``image_root``;
* a folder: Flickr8k's text folder (``Flickr8k.token.txt`` + split lists), a folder with
  ``captions.tsv`` and ``images/`` (e.g. ``flickr8k_mini1000``), a COCO folder (``annotations/
  captions_{train,val}2017.json`` beside ``train2017/``, ``val2017/``);
* a file: Karpathy's ``dataset_{flickr30k,flickr8k,coco}.json`` (``images[].filename``, ``filepath``,
  ``split``, ``sentences[].raw``), an official COCO caption JSON, Flickr8k's token file
  (``<image>#<k>\\t<caption>``), the Flickr30k caption TSV, or a generic JSONL (one object per line
  with ``image`` and ``caption``, optional ``split``) / TSV / CSV (a header naming ``image`` and
  ``caption`` columns, optional ``split``).

Image paths are resolved against ``image_root`` (default: the folder that holds the file, or a
folder's ``images/``); COCO's files are looked up under ``<root>/<split>/`` (e.g. ``train2017/``) and
Karpathy's under ``<root>/<filepath>/``. Pairs whose image file does not exist are skipped and counted
(``PairTable.skipped``) — a caption table usually covers more images than a local image folder — and
a malformed line is a :class:`~capcse.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from capcse.data._text import decode, read_bytes, require_rows
from capcse.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

CAPTION_SETS = ("flickr8k", "flickr30k-captions", "coco-captions")


@dataclass(frozen=True)
class ImageTextPair:
    image_id: str       # the image's path relative to the image root (unique, stable)
    image_path: str     # the resolved file
    caption: str
    split: str | None


class PairTable(list):
    """A list of :class:`ImageTextPair` with its source, image root and skip counts (reason -> count)."""

    def __init__(self, pairs: Iterable[ImageTextPair] = (), *, name: str = "", source: str = "",
                 image_root: str = "", skipped: dict[str, int] | None = None):
        super().__init__(pairs)
        self.name, self.source, self.image_root = name, source, image_root
        self.skipped: dict[str, int] = dict(skipped or {})

    @property
    def images(self) -> dict[str, str]:
        """image id -> path, in first-seen order."""
        return {p.image_id: p.image_path for p in self}

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "pairs": len(self), "images": len(self.images), "skipped": dict(self.skipped),
                "splits": dict(Counter(p.split or "none" for p in self))}


# ------------------------------------------------------------------------------------------- raw rows
# A raw row: (relative image path, caption, split, line number or None)
Raw = tuple[str, str, "str | None", "int | None"]


def _karpathy_rows(path: Path, obj: dict) -> list[Raw]:
    rows: list[Raw] = []
    for k, img in enumerate(obj["images"]):
        try:
            name = img["filename"]
            rel = f"{img['filepath']}/{name}" if img.get("filepath") else name
            rows.extend((rel, s["raw"].strip(), img.get("split"), None) for s in img["sentences"])
        except (KeyError, TypeError) as exc:
            raise DataFormatError(path, None, f"images[{k}]: expected filename and sentences[].raw ({exc})") from None
    return rows


def _json_rows(path: Path) -> list[Raw]:
    try:
        obj = json.loads(decode(read_bytes(path), path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("images"), list):
        raise DataFormatError(path, None, "expected a JSON object with an 'images' list (Karpathy or COCO format)")
    if "annotations" not in obj:
        return _karpathy_rows(path, obj)
    from capcse.data.corpora import read_caption_table

    return [(r.image, r.caption, r.split, None) for r in read_caption_table(path)]


def _jsonl_rows(path: Path) -> list[Raw]:
    rows: list[Raw] = []
    for lineno, line in enumerate(decode(read_bytes(path), path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, lineno, f"invalid JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str) or not isinstance(rec.get("caption"), str):
            raise DataFormatError(path, lineno, "expected an object with string fields 'image' and 'caption'")
        if not rec["image"].strip() or not rec["caption"].strip():
            raise DataFormatError(path, lineno, "empty image or caption")
        split = rec.get("split")
        rows.append((rec["image"].strip(), rec["caption"].strip(), str(split) if split is not None else None, lineno))
    return rows


def _table_rows(path: Path, delimiter: str) -> list[Raw]:
    text = decode(read_bytes(path), path).lstrip("\ufeff")
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise DataFormatError(path, 1, "empty file") from None
    if not {"image", "caption"} <= set(header):
        raise DataFormatError(path, 1, f"header {header} needs 'image' and 'caption' columns")
    ii, ic = header.index("image"), header.index("caption")
    isp = header.index("split") if "split" in header else None
    rows: list[Raw] = []
    for lineno, cols in enumerate(reader, start=2):
        if not cols or all(not c.strip() for c in cols):
            continue
        if len(cols) != len(header):
            raise DataFormatError(path, lineno, f"expected {len(header)} fields, found {len(cols)}")
        image, caption = cols[ii].strip(), cols[ic].strip()
        if not image or not caption:
            raise DataFormatError(path, lineno, "empty image or caption")
        split = cols[isp].strip() if isp is not None else None
        rows.append((image, caption, split if split not in (None, "", "none") else None, lineno))
    return rows


def _token_file_rows(path: Path) -> list[Raw]:
    """Flickr8k.token.txt; split lists beside it give the splits (the registry reader does the work)."""
    from capcse.data.corpora import read_caption_table

    if (path.parent / "Flickr_8k.trainImages.txt").is_file():
        return [(r.image, r.caption, r.split, None) for r in read_caption_table(path.parent)]
    rows: list[Raw] = []
    for lineno, line in enumerate(decode(read_bytes(path), path).splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, caption = line.partition("\t")
        image, hash_, _ = key.partition("#")
        if not sep or not hash_ or not caption.strip():
            raise DataFormatError(path, lineno, "expected '<image>#<k>\\t<caption>'")
        rows.append((image, caption.strip(), None, lineno))
    return rows


def _source_rows(source: str, data_dir) -> tuple[list[Raw], Path | None, str]:
    """Raw rows, a default image root (or None) and a name for ``source``."""
    from capcse.data.corpora import read_caption_table
    from capcse.data.loaders import load_caption_table

    if source.strip().lower() in CAPTION_SETS:
        table = load_caption_table(source.strip().lower(), data_dir=data_dir)
        return [(r.image, r.caption, r.split, None) for r in table], None, table.name
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "annotations").is_dir() and any((path / "annotations").glob("captions_*2017.json")):
            table = read_caption_table(path / "annotations")
            return [(r.image, r.caption, r.split, None) for r in table], path, path.name
        table = read_caption_table(path)
        root = path / "images" if (path / "images").is_dir() else (
            path / "Flicker8k_Dataset" if (path / "Flicker8k_Dataset").is_dir() else path)
        return [(r.image, r.caption, r.split, None) for r in table], root, path.name
    if not path.is_file():
        raise ConfigError(f"image-caption source {source!r}: not a caption set ({', '.join(CAPTION_SETS)}), "
                          "folder or file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        rows = _json_rows(path)
    elif suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif path.name.endswith(".token.txt"):
        rows = _token_file_rows(path)
    elif suffix in (".tsv", ".csv") or path.name.endswith(".tsv.gz"):
        if path.name.endswith(".gz"):
            rows = [(r.image, r.caption, r.split, None) for r in read_caption_table(path)]
        else:
            rows = _table_rows(path, "\t" if suffix == ".tsv" else ",")
    else:
        raise ConfigError(f"{path}: unknown image-caption file type (json, jsonl, tsv, csv, Flickr8k .token.txt)")
    require_rows(rows, path, "image-caption rows")
    return rows, (path.parent / "images" if (path.parent / "images").is_dir() else path.parent), path.stem


def _resolve(root: Path, image: str, split: str | None) -> Path | None:
    p = Path(image).expanduser()
    candidates = [p] if p.is_absolute() else [root / p] + ([root / split / p] if split else [])
    for c in candidates:
        if c.is_file():
            return c
    return None


def read_image_text_pairs(source: str | os.PathLike, *, image_root: str | os.PathLike | None = None,
                          split: str | None = None, captions_per_image: int | None = None, seed: int = 0,
                          data_dir=None) -> PairTable:
    """Image–caption pairs of ``source`` (see the module docstring) whose image file exists.

    ``split`` keeps that split only (e.g. ``train``; never train on test images). ``captions_per_image``
    keeps k captions per image chosen at random with ``seed`` (MCSE and DALR train on one random
    caption per image); ``None`` keeps them all.
    """
    rows, default_root, name = _source_rows(str(source), data_dir)
    if image_root is None and default_root is None:
        raise ConfigError(f"{source}: the caption set has no images of its own; give image_root (the image folder)")
    root = Path(image_root).expanduser() if image_root is not None else default_root
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist")
    skipped: Counter = Counter()
    if split is not None:
        kept = [r for r in rows if r[2] == split]
        if rows and not kept:
            raise ConfigError(f"{source}: no captions in split {split!r}; splits: {sorted({str(r[2]) for r in rows})}")
        skipped["other splits"] += len(rows) - len(kept)
        rows = kept
    by_image: dict[str, list[Raw]] = defaultdict(list)
    for r in rows:
        by_image[r[0]].append(r)
    pairs: list[ImageTextPair] = []
    rng = random.Random(seed)
    missing_example = None
    for image, group in by_image.items():
        path = _resolve(root, image, group[0][2])
        if path is None:
            skipped["image file not found"] += len(group)
            missing_example = missing_example or image
            continue
        image_id = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        if captions_per_image is not None and len(group) > captions_per_image:
            group = rng.sample(group, captions_per_image)
        pairs.extend(ImageTextPair(image_id, str(path), cap, sp) for _, cap, sp, _ in group)
    if not pairs:
        raise ConfigError(f"{source}: no image-caption pair has its image under {root}"
                          + (f" (e.g. {missing_example})" if missing_example else ""))
    table = PairTable(pairs, name=name, source=str(source), image_root=str(root),
                      skipped={k: v for k, v in skipped.items() if v})
    if skipped.get("image file not found"):
        logger.warning("%s: %d caption(s) skipped, their image is not under %s (e.g. %s)", source,
                       skipped["image file not found"], root, missing_example)
    return table
