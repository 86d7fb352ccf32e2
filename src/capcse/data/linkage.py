"""Record-linkage data: the generic record format, its checked reader, and the benchmark builder.

Record format (CSV with a header, or JSON Lines), one record per row::

    record_id, image, text, cluster_id, split

``image`` is a path (relative paths are resolved against the file's folder, or ``image_root``);
``cluster_id`` groups records that are the same underlying item (it may be empty for unlabelled
records, e.g. for CLIP pre-training); ``split`` is ``train``, ``validation`` or ``test`` (``val`` and
``dev`` are read as ``validation``).

:func:`read_records` raises :class:`~capcse.errors.DataFormatError` (file and line) on a malformed row
and reports bad records *by id* (missing image, empty text, unknown cluster id, duplicate id, a
cluster found in two splits): they are skipped and counted in the :class:`RecordReport`, or with
``strict=True`` raised as one error that lists them.

:func:`build_benchmark` turns an image-caption set into a linkage task: each source image is
"reprinted" several times (random crop, rescale, colour jitter, optional grey scale, JPEG
re-compression, all with Pillow), each copy paired with a different caption of that image plus word
noise (deletions, swaps, OCR-like character errors). Cluster = source image; splits are drawn by source
image; everything is seeded, so the same inputs and seed give byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from capcse.data._text import check_text_file
from capcse.errors import DataFormatError
from capcse.io import atomic_open, atomic_write_bytes, atomic_write_json

__all__ = ["Record", "RecordReport", "read_records", "write_records", "build_benchmark", "FIELDS", "SPLITS"]

FIELDS = ("record_id", "image", "text", "cluster_id", "split")
SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"train": "train", "validation": "validation", "val": "validation", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class Record:
    record_id: str
    image: str  # resolved path
    text: str
    cluster_id: str | None
    split: str


@dataclass
class RecordReport:
    """What :func:`read_records` kept and what it skipped (by record id)."""

    path: str
    n_rows: int = 0
    missing_image: list = field(default_factory=list)
    empty_text: list = field(default_factory=list)
    unknown_cluster: list = field(default_factory=list)
    duplicate_id: list = field(default_factory=list)
    cluster_in_two_splits: list = field(default_factory=list)

    @property
    def n_bad(self) -> int:
        return sum(len(v) for v in self.problems().values())

    def problems(self) -> dict:
        return {k: getattr(self, k) for k in ("missing_image", "empty_text", "unknown_cluster", "duplicate_id", "cluster_in_two_splits") if getattr(self, k)}

    def summary(self) -> str:
        if not self.n_bad:
            return f"{self.path}: {self.n_rows} records, all valid"
        parts = [f"{k.replace('_', ' ')}: {len(v)} ({', '.join(map(str, v[:10]))}{', ...' if len(v) > 10 else ''})" for k, v in self.problems().items()]
        return f"{self.path}: {self.n_rows} records, {self.n_bad} skipped -- " + "; ".join(parts)


def _rows(path: Path) -> Iterable[tuple[int, dict]]:
    check_text_file(path, what="records")  # empty / not UTF-8: FILE[:LINE], not a UnicodeDecodeError
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFormatError(path, lineno, f"invalid JSON: {exc.msg}") from None
                if not isinstance(row, dict):
                    raise DataFormatError(path, lineno, "each line must be a JSON object")
                yield lineno, row
    else:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataFormatError(path, 1, "empty file (expected a header " + ",".join(FIELDS) + ")")
            header = [h.strip() for h in header]
            for lineno, values in enumerate(reader, 2):
                if not values:
                    continue
                if len(values) != len(header):
                    raise DataFormatError(path, reader.line_num, f"{len(values)} fields, the header has {len(header)}")
                yield reader.line_num, dict(zip(header, values))


def read_records(
    path,
    *,
    image_root=None,
    known_clusters: Iterable[str] | None = None,
    require_cluster: bool = True,
    check_images: bool = True,
    strict: bool = False,
) -> tuple[list[Record], RecordReport]:
    """Read and check a record file; returns the valid records and the report of skipped ones.

    A record is bad when its image file does not exist, its text is empty, or its cluster id is
    unknown: empty while ``require_cluster``, or not in ``known_clusters`` when that is given.
    Duplicate record ids and clusters spread over two splits are reported too (every record involved).
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    known = None if known_clusters is None else {str(c) for c in known_clusters}
    report = RecordReport(path=str(path))
    kept: list[Record] = []
    seen: dict[str, int] = {}
    for lineno, row in _rows(path):
        missing = [f for f in FIELDS if f not in row and not (f == "cluster_id" and not require_cluster)]
        if missing:
            raise DataFormatError(path, lineno, f"missing field(s) {', '.join(missing)}")
        rid = str(row["record_id"]).strip()
        if not rid:
            raise DataFormatError(path, lineno, "empty record_id")
        split = _SPLIT_ALIASES.get(str(row["split"]).strip().lower())
        if split is None:
            raise DataFormatError(path, lineno, f"unknown split {row['split']!r} (train, validation, test)")
        report.n_rows += 1
        if rid in seen:
            report.duplicate_id.append(rid)
            continue
        seen[rid] = lineno
        text = str(row["text"] or "").strip()
        cluster = row.get("cluster_id")
        cluster = None if cluster is None or str(cluster).strip() == "" else str(cluster).strip()
        image = Path(str(row["image"]))
        image = image if image.is_absolute() else root / image
        if check_images and not image.is_file():
            report.missing_image.append(rid)
        elif not text:
            report.empty_text.append(rid)
        elif (cluster is None and require_cluster) or (cluster is not None and known is not None and cluster not in known):
            report.unknown_cluster.append(rid)
        else:
            kept.append(Record(rid, str(image), text, cluster, split))
    splits_of: dict[str, set] = {}
    for r in kept:
        if r.cluster_id is not None:
            splits_of.setdefault(r.cluster_id, set()).add(r.split)
    leaking = {c for c, s in splits_of.items() if len(s) > 1}
    if leaking:
        report.cluster_in_two_splits = [r.record_id for r in kept if r.cluster_id in leaking]
        kept = [r for r in kept if r.cluster_id not in leaking]
    if strict and report.n_bad:
        raise DataFormatError(path, None, report.summary())
    return kept, report


def write_records(path, records: Sequence[dict]) -> Path:
    """Write records (dicts with :data:`FIELDS`) as CSV or JSONL (by suffix), atomically."""
    path = Path(path)
    with atomic_open(path, "w") as fh:
        if path.suffix.lower() in (".jsonl", ".json"):
            for r in records:
                fh.write(json.dumps({f: r.get(f) for f in FIELDS}, ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(FIELDS)
            for r in records:
                writer.writerow(["" if r.get(f) is None else r.get(f) for f in FIELDS])
    return path


# --------------------------------------------------------------------------------------------------
# benchmark builder


def read_caption_table(path) -> dict[str, list[str]]:
    """``captions.tsv`` (image, caption_id, split, caption; a header line) -> captions per image."""
    path = Path(path)
    out: dict[str, list[str]] = {}
    check_text_file(path, what="captions")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:1] != ["image"] or "caption" not in header:
            raise DataFormatError(path, 1, f"expected a header with image ... caption, got {header}")
        col = header.index("caption")
        for lineno, line in enumerate(fh, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(header):
                raise DataFormatError(path, lineno, f"{len(parts)} tab-separated fields, expected {len(header)}")
            out.setdefault(parts[0], []).append(parts[col])
    return out


def reprint_image(img, rng: random.Random, *, grey_p: float = 0.2):
    """A noisy 'reprint' of a picture: crop, rescale, colour jitter, maybe grey, JPEG re-compression.

    Returns (JPEG bytes, dict of the parameters drawn).
    """
    from PIL import Image, ImageEnhance

    img = img.convert("RGB")
    w, h = img.size
    fw, fh = rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)
    cw, ch = max(1, round(w * fw)), max(1, round(h * fh))
    x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = img.crop((x0, y0, x0 + cw, y0 + ch))
    side = rng.randint(96, 320)
    scale = side / max(cw, ch)
    img = img.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BICUBIC)
    params = {"crop": [x0, y0, cw, ch], "long_side": side}
    for name, enhancer in (("brightness", ImageEnhance.Brightness), ("contrast", ImageEnhance.Contrast), ("saturation", ImageEnhance.Color)):
        factor = rng.uniform(0.7, 1.3)
        img = enhancer(img).enhance(factor)
        params[name] = round(factor, 4)
    if rng.random() < grey_p:
        img = img.convert("L").convert("RGB")
        params["grey"] = True
    quality = rng.randint(25, 90)
    params["jpeg_quality"] = quality
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), params


_OCR_CONFUSIONS = {"o": "0", "l": "1", "i": "l", "e": "c", "a": "o", "s": "5", "m": "rn", "n": "m", "c": "e", "t": "f"}


def noisy_caption(text: str, rng: random.Random, *, p_drop: float = 0.08, p_swap: float = 0.05, p_ocr: float = 0.05) -> str:
    """Word noise: drop words, swap neighbours, OCR-like character confusions (at least one word kept)."""
    words = text.split()
    kept = [w for w in words if rng.random() >= p_drop] or words[:1]
    for k in range(len(kept) - 1):
        if rng.random() < p_swap:
            kept[k], kept[k + 1] = kept[k + 1], kept[k]
    out = []
    for w in kept:
        if rng.random() < p_ocr:
            pos = [k for k, ch in enumerate(w) if ch.lower() in _OCR_CONFUSIONS]
            if pos:
                k = rng.choice(pos)
                w = w[:k] + _OCR_CONFUSIONS[w[k].lower()] + w[k + 1 :]
        out.append(w)
    return " ".join(out)


def build_benchmark(
    captions_tsv,
    images_dir,
    out_dir,
    *,
    seed: int = 0,
    min_copies: int = 1,
    max_copies: int = 5,
    split_fractions: Sequence[float] = (0.5, 0.25, 0.25),
    limit: int | None = None,
) -> dict:
    """Build the linkage benchmark in ``out_dir`` (``records.csv``, ``images/``, ``build.json``).

    Each source image becomes a cluster of ``min_copies..max_copies`` reprints (uniform), each with a
    different caption of the image (captions are drawn without replacement while they last) plus word
    noise. Source images are shuffled with ``seed`` and split by ``split_fractions`` (train,
    validation, test). Returns the build summary written to ``build.json``.
    """
    from PIL import Image

    if not 1 <= min_copies <= max_copies:
        raise ValueError(f"need 1 <= min_copies <= max_copies, got {min_copies}, {max_copies}")
    if len(split_fractions) != 3 or abs(sum(split_fractions) - 1.0) > 1e-9 or min(split_fractions) < 0:
        raise ValueError(f"split_fractions must be three non-negative numbers summing to 1, got {split_fractions}")
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    captions = read_caption_table(captions_tsv)
    sources = sorted(captions)
    if limit is not None:
        sources = sources[:limit]
    missing = [s for s in sources if not (images_dir / s).is_file()]
    if missing:
        raise DataFormatError(captions_tsv, None, f"{len(missing)} images not found in {images_dir} (e.g. {missing[:3]})")
    rng = random.Random(seed)
    order = sources[:]
    rng.shuffle(order)
    n_train = round(split_fractions[0] * len(order))
    n_val = round(split_fractions[1] * len(order))
    split_of = {s: ("train" if k < n_train else "validation" if k < n_train + n_val else "test") for k, s in enumerate(order)}
    records = []
    for cluster, source in enumerate(sources):
        item_rng = random.Random(f"{seed}:{source}")  # per-image stream: adding images never reshuffles others
        n_copies = item_rng.randint(min_copies, max_copies)
        pool = captions[source][:]
        item_rng.shuffle(pool)
        with Image.open(images_dir / source) as img:
            img.load()
            for copy in range(n_copies):
                caption = pool[copy % len(pool)]
                jpeg, _ = reprint_image(img, item_rng)
                rid = f"c{cluster:05d}_r{copy}"
                atomic_write_bytes(out_dir / "images" / f"{rid}.jpg", jpeg)
                records.append({"record_id": rid, "image": f"images/{rid}.jpg", "text": noisy_caption(caption, item_rng),
                                "cluster_id": f"c{cluster:05d}", "split": split_of[source], "source": source})
    write_records(out_dir / "records.csv", records)
    digest = hashlib.sha256((out_dir / "records.csv").read_bytes()).hexdigest()
    counts = {s: sum(r["split"] == s for r in records) for s in SPLITS}
    clusters = {s: len({r["cluster_id"] for r in records if r["split"] == s}) for s in SPLITS}
    summary = {
        "captions": str(captions_tsv), "images": str(images_dir), "seed": seed, "min_copies": min_copies,
        "max_copies": max_copies, "split_fractions": list(split_fractions), "n_sources": len(sources),
        "n_records": len(records), "records_per_split": counts, "clusters_per_split": clusters,
        "records_sha256": digest,
    }
    atomic_write_json(out_dir / "build.json", summary)
    return summary
