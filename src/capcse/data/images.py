"""Image sources for captioning: folders, path lists, and img2dataset webdataset shards.

A source is an ordered list of *parts*; a part is an ordered list of :class:`ImageItem`.

* a folder (searched recursively; image files by extension, hidden files and folders ignored) is one
  part, its items sorted by their relative POSIX path;
* a list file (``.txt``/``.lst``: one path per line; ``.csv``/``.tsv``: a header row naming a path
  column and optionally an id and an alt-text column) is one part, in file order; relative paths are
  resolved against the list file's folder;
* webdataset tar shards as written by img2dataset (``00000.tar`` with ``KEY.jpg``, ``KEY.txt`` (the
  original alt-text) and ``KEY.json`` per sample) give one part per tar, tars sorted by name, samples
  in tar order. A source naming a folder whose top level holds ``*.tar`` files, a ``.tar`` file, a
  glob (``shards/*.tar``) or a brace range (``shards/{00000..00331}.tar``) is read this way.

An item's *position* (part index, index inside the part) is its global identity: everything that must
not depend on how the work is split (sharding, resuming, batch seeds) is defined on positions.

Image bytes are decoded by :func:`decode_image` in background workers (:func:`make_loader`); a file
that is empty, truncated, corrupt or not an image becomes an error string for that item, never an
exception that stops the run.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from capcse.errors import CapcseError, DataFormatError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_WDS_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
PATH_COLUMNS = ("path", "image", "filepath", "file", "filename", "image_path")
ID_COLUMNS = ("id", "key", "image_id")
ALT_TEXT_COLUMNS = ("alt_text", "caption", "text")


@dataclass
class ImageItem:
    """One image of a source. ``data_offset``/``size`` locate a tar member's bytes inside ``file``."""

    key: str
    path: str
    file: str
    data_offset: int | None = None
    size: int | None = None
    alt_text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # known-bad before decoding (e.g. a webdataset sample without an image)

    def read_bytes(self) -> bytes:
        with open(self.file, "rb") as fh:
            if self.data_offset is None:
                return fh.read()
            fh.seek(self.data_offset)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise OSError(f"tar member truncated: expected {self.size} bytes, read {len(data)}")
        return data


@dataclass
class ImagePart:
    """An ordered group of items: a whole folder / list, or one tar shard (indexed on first use)."""

    index: int
    name: str
    _loader: Callable[[], list[ImageItem]]
    _items: list[ImageItem] | None = None

    @property
    def items(self) -> list[ImageItem]:
        if self._items is None:
            self._items = self._loader()
        return self._items


@dataclass
class ImageSource:
    spec: str
    kind: str  # folder | list | webdataset
    parts: list[ImagePart]

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "kind": self.kind, "parts": [p.name for p in self.parts]}


# ----------------------------------------------------------------------------------------- sources
def _expand_braces(pattern: str) -> list[str]:
    """Expand webdataset-style numeric ranges ``{000..123}`` (zero padding kept), recursively."""
    m = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if not m:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    width = len(lo) if lo.startswith("0") else 0
    out = []
    for i in range(int(lo), int(hi) + 1):
        out.extend(_expand_braces(pattern[: m.start()] + str(i).zfill(width) + pattern[m.end():]))
    return out


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _folder_items(root: Path) -> list[ImageItem]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if not name.startswith(".") and _is_image_name(name):
                found.append((rel_dir / name).as_posix())
    found.sort()
    return [ImageItem(key=rel, path=str(root / rel), file=str(root / rel)) for rel in found]


def _pick_column(header: list[str], wanted: Sequence[str], explicit: str | None, path: Path, what: str):
    lower = [h.strip().lower() for h in header]
    if explicit is not None:
        if explicit.lower() not in lower:
            raise DataFormatError(path, 1, f"no column {explicit!r} in header {header}")
        return lower.index(explicit.lower())
    for name in wanted:
        if name in lower:
            return lower.index(name)
    if what == "path":
        raise DataFormatError(path, 1, f"header {header} has no image path column (one of {list(wanted)})")
    return None


def _list_items(list_file: Path, path_column: str | None = None) -> list[ImageItem]:
    base = list_file.parent
    items: list[ImageItem] = []

    def resolve(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else base / q)

    suffix = list_file.suffix.lower()
    with open(list_file, encoding="utf-8", newline="") as fh:
        if suffix in (".csv", ".tsv"):
            reader = csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            try:
                header = next(reader)
            except StopIteration:
                return []
            pcol = _pick_column(header, PATH_COLUMNS, path_column, list_file, "path")
            icol = _pick_column(header, ID_COLUMNS, None, list_file, "id")
            acol = _pick_column(header, ALT_TEXT_COLUMNS, None, list_file, "alt")
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise DataFormatError(list_file, lineno, f"expected {len(header)} fields, found {len(row)}")
                p = row[pcol].strip()
                if not p:
                    raise DataFormatError(list_file, lineno, "empty image path")
                key = row[icol].strip() if icol is not None else p
                alt = row[acol] if acol is not None else None
                items.append(ImageItem(key=key, path=p, file=resolve(p), alt_text=alt))
        else:
            for line in fh:
                p = line.strip()
                if p and not p.startswith("#"):
                    items.append(ImageItem(key=p, path=p, file=resolve(p)))
    return items


def index_tar(tar_path: str | os.PathLike, display_name: str | None = None) -> list[ImageItem]:
    """Index an img2dataset / webdataset tar: one item per sample key, in order of first appearance.

    The image member's byte range is recorded (workers read it with one seek); ``.txt`` becomes the
    alt-text and ``.json`` the item's ``meta``. A sample without an image member, or samples cut off
    by a truncated tar, become items carrying an ``error`` instead of being dropped silently.
    """
    tar_path = str(tar_path)
    display = display_name or os.path.basename(tar_path)
    samples: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    tail_error: str | None = None
    try:
        with tarfile.open(tar_path, mode="r:") as tf:
            while True:
                try:
                    member = tf.next()
                except (tarfile.TarError, OSError, EOFError) as exc:
                    tail_error = f"tar read error after {len(order)} samples: {exc}"
                    break
                if member is None:
                    break
                if not member.isfile():
                    continue
                dirname, base = os.path.split(member.name)
                if base.startswith("."):
                    continue
                stem, dot, ext = base.partition(".")
                if not dot:
                    continue
                key = f"{dirname}/{stem}" if dirname else stem
                ext = ext.lower()
                if key not in samples:
                    samples[key] = {}
                    order.append(key)
                sample = samples[key]
                if ext in _WDS_IMAGE_EXTS and "image" not in sample:
                    sample["image"] = (member.offset_data, member.size, member.name)
                elif ext in ("txt", "json"):
                    fh = tf.extractfile(member)
                    try:
                        sample[ext] = fh.read().decode("utf-8", errors="replace") if fh else ""
                    except (tarfile.TarError, OSError, EOFError) as exc:
                        sample["error"] = f"unreadable {ext} member: {exc}"
    except (tarfile.TarError, OSError) as exc:
        raise CapcseError(f"{tar_path}: not a readable tar file: {exc}") from exc

    items: list[ImageItem] = []
    for key in order:
        s = samples[key]
        meta: dict[str, Any] = {}
        if "json" in s:
            try:
                meta = json.loads(s["json"])
                if not isinstance(meta, dict):
                    meta = {"json": meta}
            except json.JSONDecodeError as exc:
                meta = {"json_error": str(exc)}
        alt = s.get("txt")
        if alt is None and isinstance(meta.get("caption"), str):
            alt = meta["caption"]
        if "image" in s:
            off, size, name = s["image"]
            items.append(ImageItem(key=key, path=f"{display}/{name}", file=tar_path, data_offset=off, size=size,
                                   alt_text=alt, meta=meta))
        else:
            items.append(ImageItem(key=key, path=f"{display}/{key}", file=tar_path, alt_text=alt, meta=meta,
                                   error=s.get("error") or "webdataset sample has no image member"))
    if tail_error is not None:
        # the truncated tail cannot be enumerated: report it once, as an item of its own
        items.append(ImageItem(key=f"{display}#truncated", path=display, file=tar_path, error=tail_error))
    return items


def _tar_part(index: int, path: str, root: str | None) -> ImagePart:
    name = os.path.relpath(path, root) if root else os.path.basename(path)
    return ImagePart(index=index, name=name, _loader=lambda p=path, n=name: index_tar(p, n))


def open_image_source(spec: str | os.PathLike, path_column: str | None = None) -> ImageSource:
    """Resolve ``spec`` (folder, list/CSV/TSV file, tar, glob or brace range of tars) to a source."""
    s = str(spec)
    p = Path(s).expanduser()
    if p.is_dir():
        tars = sorted(str(t) for t in p.glob("*.tar"))
        if tars:
            return ImageSource(s, "webdataset", [_tar_part(i, t, str(p)) for i, t in enumerate(tars)])
        return ImageSource(s, "folder", [ImagePart(0, ".", lambda: _folder_items(p))])
    if p.is_file():
        if p.suffix.lower() == ".tar":
            return ImageSource(s, "webdataset", [_tar_part(0, str(p), None)])
        if p.suffix.lower() in (".txt", ".lst", ".csv", ".tsv"):
            lp = p.resolve()
            return ImageSource(s, "list", [ImagePart(0, p.name, lambda: _list_items(lp, path_column))])
        raise CapcseError(f"{s}: unsupported image source (expected a folder, .txt/.lst/.csv/.tsv list or .tar)")
    # glob or brace range of tar shards
    paths: list[str] = []
    for pat in _expand_braces(os.path.expanduser(s)):
        paths.extend(glob.glob(pat) if glob.has_magic(pat) else ([pat] if os.path.isfile(pat) else []))
    paths = sorted(set(paths))
    if not paths:
        raise CapcseError(f"image source not found: {s} (no such folder, list file, tar or matching shards)")
    non_tar = [x for x in paths if not x.endswith(".tar")]
    if non_tar:
        raise CapcseError(f"{s}: a pattern source must match .tar shards only; also matched {non_tar[:3]}")
    root = os.path.commonpath([os.path.dirname(x) for x in paths])
    return ImageSource(s, "webdataset", [_tar_part(i, t, root) for i, t in enumerate(paths)])


# ---------------------------------------------------------------------------------------- sharding
def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` (0-based i) -> (i, N); ``None`` -> (0, 1)."""
    if text is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise CapcseError(f"--shard must be i/N with 0 <= i < N, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def chunk_owner(part_index: int, chunk_index: int, num_shards: int) -> int:
    """The shard that processes chunk ``chunk_index`` of part ``part_index``: round robin on both.

    Depends only on global positions, so every shard computes the same assignment; the chunks of
    each part are spread over all shards (no shard idles when there are fewer parts than shards).
    """
    return (part_index + chunk_index) % num_shards


# ---------------------------------------------------------------------------------------- decoding
def decode_image(data: bytes):
    """Bytes -> fully decoded RGB ``PIL.Image``; raises ``ValueError`` with a readable reason."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # force full decoding: truncated / corrupt data fails here, not later
            return im.convert("RGB")
    except UnidentifiedImageError:
        raise ValueError("not an image: cannot identify image file") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"refused (decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValueError(f"truncated or corrupt image: {exc}") from None


class ImageDataset:
    """Map-style dataset over items; ``transform`` (PIL image -> tensor) runs in the loader's workers.

    ``__getitem__`` never raises for a bad image: it returns ``(index, None, reason)``.
    """

    def __init__(self, items: Sequence[ImageItem], transform: Callable[[Any], Any]):
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        if item.error is not None:
            return index, None, item.error
        try:
            data = item.read_bytes()
        except OSError as exc:
            return index, None, f"unreadable file: {exc}"
        try:
            image = decode_image(data)
        except ValueError as exc:
            return index, None, str(exc)
        try:
            return index, self.transform(image), None
        except Exception as exc:  # noqa: BLE001 - a preprocessing failure is reported, not fatal
            return index, None, f"preprocessing failed: {type(exc).__name__}: {exc}"


def collate_images(samples):
    """Stack the good images; keep the item indices of good and bad ones and each bad one's reason."""
    import torch

    good = [(i, t) for i, t, err in samples if err is None]
    return {
        "indices": [i for i, _, _ in samples],
        "good": [i for i, _ in good],
        "pixel_values": torch.stack([t for _, t in good]) if good else None,
        "errors": {i: err for i, _, err in samples if err is not None},
    }


def make_loader(items: Sequence[ImageItem], batches: Iterable[list[int]], transform: Callable[[Any], Any],
                num_workers: int = 2, prefetch_factor: int = 2):
    """A torch ``DataLoader`` yielding the given batches (lists of item indices) in order.

    Decoding and preprocessing run in ``num_workers`` background processes (0: in this process);
    the batch composition is exactly ``batches``, so results do not depend on the worker count.
    """
    from torch.utils.data import DataLoader

    batches = list(batches)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
    return DataLoader(ImageDataset(items, transform), batch_sampler=batches, num_workers=num_workers,
                      collate_fn=collate_images, **kwargs)
