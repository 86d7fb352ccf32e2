"""A captioning run: chunks, shards, resume, bad-image report and the final corpus files.

Work is cut on *global positions* so that the result does not depend on how it is executed:

* part ``p`` (a folder/list, or one tar shard) is cut into chunks of ``chunk_size`` items:
  chunk ``c`` holds items ``[c*chunk_size, (c+1)*chunk_size)``; a chunk is cut into batches of
  ``batch_size`` items (``chunk_size`` is a multiple of ``batch_size``);
* batch RNG seed = ``batch_seed(seed, part name, first item position)``: sampling depends only on
  the seed, the batch composition and the images;
* shard ``i/N`` processes the chunks with ``(p + c) % N == i``. Every process writes finished chunks
  to ``OUT/chunks/`` atomically (``p000000-c000000.jsonl`` + ``.skipped.jsonl``), so shards may share
  one output folder, or run in separate folders that ``merge_runs`` joins later;
* a finished chunk file is never recomputed: re-running the same command after a crash (kill -9)
  redoes only the chunks that were not yet written, and the final files are rebuilt from the chunks;
* finished work is keyed by *image identity*, not by position alone: the first run of a part records
  every item's identity (key + file size + mtime; a tar member's key + size + offset) in
  ``OUT/chunks/p000000.part.json``, and a re-run matches the current listing against it by identity.
  Images added since then (wherever they sort) are appended after the recorded ones as a new
  *segment* with chunks of its own; a re-ordered list keeps the recorded order; an image that is gone
  or whose file changed makes the run refuse with a message (its captions cannot be un-made). So a
  changed input set is either resumed without a duplicate or a missing image, or refused;
* when every chunk of every part exists, ``captions.jsonl`` (all records, in position order),
  ``captions.txt`` (one non-empty caption per line), ``skipped.jsonl`` and ``report.json`` are
  written atomically. Since the records contain nothing execution-specific, N shards produce
  byte-for-byte the files one process produces.

``run.json`` records every setting that changes the captions; resuming with different settings is
refused instead of silently mixing two corpora.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from capcse.caption.generate import Captioner, DecodingConfig, batch_seed, check_model_name, decoding_to_dict
from capcse.data.images import (IMAGE_EXTENSIONS, ImageItem, ImagePart, ImageSource, chunk_owner, make_loader,
                                open_image_source)
from capcse.errors import CapcseError
from capcse.io import atomic_open, atomic_write_json

RUN_FILE = "run.json"
CHUNK_DIR = "chunks"


@dataclass
class RunSettings:
    images: str
    model: str
    decoding: DecodingConfig
    seed: int = 0
    batch_size: int = 16
    chunk_size: int = 1024
    dtype: str = "fp32"
    autocast: str | None = None
    adapter: str = "auto"
    path_column: str | None = None
    attention: str = "sdpa"             # sdpa | eager: BLIP vision attention (capcse.caption.attention)

    def identity(self) -> dict[str, Any]:
        """Everything that changes the captions (device, workers and shard do not)."""
        return {"images": self.images, "model": self.model, "decoding": decoding_to_dict(self.decoding),
                "seed": self.seed, "batch_size": self.batch_size, "chunk_size": self.chunk_size,
                "dtype": self.dtype, "autocast": self.autocast or "none", "adapter": self.adapter,
                "path_column": self.path_column, "attention": self.attention}


@dataclass
class RunStats:
    chunks_done_now: int = 0
    chunks_skipped_existing: int = 0
    images_now: int = 0
    failed_now: int = 0
    generate_seconds: float = 0.0
    wall_seconds: float = 0.0
    assembled: bool = False
    missing_chunks: list[str] = field(default_factory=list)


def chunk_name(part: int, chunk: int) -> str:
    return f"p{part:06d}-c{chunk:06d}"


def _check_or_write_run_file(out: Path, settings: RunSettings) -> None:
    path = out / RUN_FILE
    ident = settings.identity()
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(ident) if old.get(k) != ident.get(k))
        if diff:
            detail = "; ".join(f"{k}: {old.get(k)!r} -> {ident.get(k)!r}" for k in diff)
            raise CapcseError(f"{out} holds a run with other settings ({detail}); use another --out to start afresh")
    else:
        atomic_write_json(path, ident)


def _record(item: ImageItem, part: ImagePart, pos: int, k: int, caption: str, settings: RunSettings,
            decoding_desc: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": item.key, "path": item.path, "caption_index": k, "caption": caption}
    if item.alt_text is not None:
        rec["alt_text"] = item.alt_text
    if isinstance(item.meta.get("url"), str):
        rec["url"] = item.meta["url"]
    rec.update(part=part.name, position=pos, model=settings.model, seed=settings.seed, decoding=decoding_desc)
    return rec


def _write_chunk(out: Path, name: str, records: list[dict], skipped: list[dict]) -> None:
    cdir = out / CHUNK_DIR
    # the skip list first: a chunk counts as done when its caption file exists
    with atomic_open(cdir / f"{name}.skipped.jsonl") as fh:
        for r in skipped:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    with atomic_open(cdir / f"{name}.jsonl") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def item_identity(item: ImageItem) -> list:
    """``[key, size, mtime_ns]`` of a file; ``[key, size, offset]`` of a tar member; sizes ``None`` if unreadable."""
    if item.data_offset is not None:
        return [item.key, item.size, item.data_offset]
    if item.error is not None:
        return [item.key, None, None]
    try:
        st = os.stat(item.file)
    except OSError:
        return [item.key, None, None]
    return [item.key, st.st_size, st.st_mtime_ns]


def _segment_chunks(segments: list[int], chunk_size: int) -> list[tuple[int, int]]:
    """Item ranges ``[start, end)`` of the chunks: each segment is cut into chunks of its own."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for n in segments:
        ranges.extend((start + s, start + min(s + chunk_size, n)) for s in range(0, n, chunk_size))
        start += n
    return ranges


def _occurrence_keys(keys: Iterable[str]) -> list[tuple[str, int]]:
    """(key, how many times it occurred before): a list file may name one image twice."""
    seen: Counter = Counter()
    out = []
    for k in keys:
        out.append((k, seen[k]))
        seen[k] += 1
    return out


def _examples(keys: list, n: int = 3) -> str:
    shown = ", ".join(repr(k[0]) for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def plan_part(out: Path, part: ImagePart, chunk_size: int) -> tuple[list[ImageItem], list[tuple[int, int]]]:
    """The part's items in recorded order (new ones appended) and its chunk ranges; records the identities.

    Raises :class:`CapcseError` when an image of the recorded run is gone or its file changed.
    """
    path = out / CHUNK_DIR / f"p{part.index:06d}.part.json"
    items = part.items
    ids = [item_identity(it) for it in items]
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    if doc is not None and "identity" not in doc:
        # a run folder written before identities were recorded: only an unchanged count can continue
        if doc["items"] != len(items):
            raise CapcseError(f"{out}: part {part.name!r} had {doc['items']} images when this run started and has "
                              f"{len(items)} now; this run folder predates resume by image identity, so it cannot "
                              "tell which images changed: restore the input set or use another --out")
        doc = None
    if doc is None:
        segments = [len(items)] if items else []
        atomic_write_json(path, {"index": part.index, "name": part.name, "items": len(items), "segments": segments,
                                 "chunks": len(_segment_chunks(segments, chunk_size)), "identity": ids})
        return items, _segment_chunks(segments, chunk_size)
    old_ids = [list(x) for x in doc["identity"]]
    segments = list(doc["segments"])
    if old_ids == ids:
        return items, _segment_chunks(segments, chunk_size)
    current = dict(zip(_occurrence_keys(i[0] for i in ids), zip(items, ids)))
    old_keys = _occurrence_keys(i[0] for i in old_ids)
    gone = [k for k in old_keys if k not in current]
    changed = [k for k, old in zip(old_keys, old_ids) if k in current and current[k][1] != old]
    if gone or changed:
        what = []
        if gone:
            what.append(f"{len(gone)} image(s) of the recorded run are gone ({_examples(gone)})")
        if changed:
            what.append(f"{len(changed)} image file(s) changed size or time since they were listed "
                        f"({_examples(changed)})")
        raise CapcseError(f"{out}: part {part.name!r} no longer matches the run recorded there: {'; '.join(what)}. "
                          "Captions already made cannot be taken back: restore those images, or use another --out")
    old_set = set(old_keys)
    added = [(it, ident) for k, (it, ident) in current.items() if k not in old_set]
    ordered = [current[k][0] for k in old_keys] + [it for it, _ in added]
    if added:
        segments.append(len(added))
        doc.update(items=len(ordered), segments=segments, chunks=len(_segment_chunks(segments, chunk_size)),
                   identity=old_ids + [ident for _, ident in added])
        atomic_write_json(path, doc)
    return ordered, _segment_chunks(segments, chunk_size)


def caption_images(settings: RunSettings, out: str | os.PathLike, shard: tuple[int, int] = (0, 1),
                   device: str | None = "auto", num_workers: int = 2, captioner: Captioner | None = None,
                   progress: bool = True) -> RunStats:
    """Caption this shard's pending chunks of ``settings.images`` into ``out``; assemble when all are done."""
    t_start = time.perf_counter()
    if settings.batch_size < 1 or settings.chunk_size < 1 or settings.chunk_size % settings.batch_size:
        raise CapcseError(f"--chunk-size ({settings.chunk_size}) must be a positive multiple of "
                          f"--batch-size ({settings.batch_size})")
    if captioner is None:
        check_model_name(settings.model)
    out = Path(out)
    (out / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    _check_or_write_run_file(out, settings)
    source = open_image_source(settings.images, settings.path_column)
    shard_i, n_shards = shard
    stats = RunStats()
    decoding_desc = settings.decoding.describe()

    if not any(part.items for part in source.parts):
        raise CapcseError(f"no images in {settings.images} (looked for {', '.join(IMAGE_EXTENSIONS)} files; "
                          "hidden files and folders are ignored)")
    plans = []
    for part in source.parts:
        items, ranges = plan_part(out, part, settings.chunk_size)
        mine = [c for c in range(len(ranges)) if chunk_owner(part.index, c, n_shards) == shard_i]
        pending = [c for c in mine if not (out / CHUNK_DIR / f"{chunk_name(part.index, c)}.jsonl").exists()]
        stats.chunks_skipped_existing += len(mine) - len(pending)
        plans.append((part, items, ranges, pending))
    total = sum(ranges[c][1] - ranges[c][0] for _, _, ranges, pending in plans for c in pending)
    from capcse.models.encoder import progress_bar

    bar = progress_bar(total, "caption", "img", show=progress)  # over images, on a terminal only
    try:
        for part, items, ranges, pending in plans:
            if not pending:
                continue
            if captioner is None:
                captioner = Captioner(settings.model, device=device, dtype=settings.dtype,
                                      autocast=settings.autocast, adapter=settings.adapter,
                                      attention=settings.attention)
            _run_part(part, items, ranges, pending, settings, captioner, out, num_workers, decoding_desc, stats,
                      bar)
    finally:
        bar.close()

    stats.assembled, stats.missing_chunks = assemble(out, source)
    stats.wall_seconds = time.perf_counter() - t_start
    return stats


def _run_part(part: ImagePart, items: list[ImageItem], ranges: list[tuple[int, int]], pending: list[int],
              settings: RunSettings, captioner: Captioner, out: Path, num_workers: int,
              decoding_desc: dict[str, Any], stats: RunStats, bar) -> None:
    bs = settings.batch_size
    batches: list[list[int]] = []
    chunk_of_batch: list[int] = []
    for c in pending:
        lo, hi = ranges[c]
        for start in range(lo, hi, bs):
            batches.append(list(range(start, min(start + bs, hi))))
            chunk_of_batch.append(c)
    last_batch_of_chunk = {c: i for i, c in enumerate(chunk_of_batch)}
    loader = make_loader(items, batches, captioner.transform, num_workers=num_workers)
    records: list[dict] = []
    skipped: list[dict] = []
    for bi, batch in enumerate(loader):
        c = chunk_of_batch[bi]
        for i in batch["indices"]:
            if i in batch["errors"]:
                skipped.append({"id": items[i].key, "path": items[i].path, "part": part.name, "position": i,
                                "reason": batch["errors"][i]})
        if batch["good"]:
            t0 = time.perf_counter()
            seed = batch_seed(settings.seed, part.name, batch["indices"][0])
            caps = captioner.caption(batch["pixel_values"], settings.decoding, seed=seed)
            stats.generate_seconds += time.perf_counter() - t0
            for i, per_image in zip(batch["good"], caps):
                for k, text in enumerate(per_image):
                    records.append(_record(items[i], part, i, k, text, settings, decoding_desc))
        stats.images_now += len(batch["good"])
        stats.failed_now += len(batch["errors"])
        bar.update(len(batch["indices"]))
        if last_batch_of_chunk[c] == bi:
            _write_chunk(out, chunk_name(part.index, c), records, skipped)
            records, skipped = [], []
            stats.chunks_done_now += 1
            bar.set_postfix(chunks=stats.chunks_done_now, skipped=stats.failed_now, refresh=False)


def _all_chunk_names(out: Path, source: ImageSource | None) -> tuple[list[str], list[str]]:
    """(every chunk name in order, the missing ones). Part sizes come from the part index files."""
    names: list[str] = []
    if source is not None:
        part_ids = [p.index for p in source.parts]
    else:
        part_ids = sorted(int(f.name[1:7]) for f in (out / CHUNK_DIR).glob("p*.part.json"))
    missing: list[str] = []
    for p in part_ids:
        idx_file = out / CHUNK_DIR / f"p{p:06d}.part.json"
        if not idx_file.exists():
            missing.append(f"p{p:06d} (part not indexed)")
            continue
        n = json.loads(idx_file.read_text(encoding="utf-8"))["chunks"]
        for c in range(n):
            name = chunk_name(p, c)
            names.append(name)
            if not (out / CHUNK_DIR / f"{name}.jsonl").exists():
                missing.append(name)
    return names, missing


def assemble(out: str | os.PathLike, source: ImageSource | None = None) -> tuple[bool, list[str]]:
    """Write the final corpus files if every chunk exists. Returns (assembled?, missing chunk names)."""
    out = Path(out)
    names, missing = _all_chunk_names(out, source)
    if missing:
        return False, missing
    counts: Counter = Counter()
    reasons: Counter = Counter()
    with atomic_open(out / "captions.jsonl") as fj, atomic_open(out / "captions.txt") as ft, \
            atomic_open(out / "skipped.jsonl") as fs:
        for name in names:
            with open(out / CHUNK_DIR / f"{name}.jsonl", encoding="utf-8") as fh:
                seen_images = set()
                for line in fh:
                    fj.write(line)
                    rec = json.loads(line)
                    counts["captions"] += 1
                    seen_images.add(rec["position"])
                    text = " ".join(str(rec["caption"]).split())
                    if text:
                        ft.write(text + "\n")
                    else:
                        counts["empty_captions"] += 1
                counts["images_captioned"] += len(seen_images)
            skip_file = out / CHUNK_DIR / f"{name}.skipped.jsonl"
            if skip_file.exists():
                with open(skip_file, encoding="utf-8") as fh:
                    for line in fh:
                        fs.write(line)
                        counts["images_skipped"] += 1
                        reasons[_reason_kind(json.loads(line)["reason"])] += 1
    run = json.loads((out / RUN_FILE).read_text(encoding="utf-8")) if (out / RUN_FILE).exists() else {}
    atomic_write_json(out / "report.json", {
        "run": run, "chunks": len(names), **counts, "skipped_by_reason": dict(sorted(reasons.items())),
        "files": {"captions_jsonl": "captions.jsonl", "captions_txt": "captions.txt", "skipped": "skipped.jsonl"}})
    return True, []


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def merge_runs(out: str | os.PathLike, others: Iterable[str | os.PathLike]) -> tuple[bool, list[str]]:
    """Copy the chunks of shard runs made in other folders into ``out`` and assemble.

    All folders must hold the same ``run.json`` (same settings), so the union is one corpus.
    """
    out = Path(out)
    (out / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    for other in map(Path, others):
        run_file = other / RUN_FILE
        if not run_file.exists():
            raise CapcseError(f"{other}: not a caption run folder (no {RUN_FILE})")
        ident = json.loads(run_file.read_text(encoding="utf-8"))
        if (out / RUN_FILE).exists():
            mine = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
            if mine != ident:
                diff = sorted(k for k in set(mine) | set(ident) if mine.get(k) != ident.get(k))
                raise CapcseError(f"{other} was made with other settings than {out}: {diff}")
        else:
            atomic_write_json(out / RUN_FILE, ident)
        # skip lists before caption files: a caption file marks its chunk as done
        for f in sorted((other / CHUNK_DIR).glob("p*"), key=lambda f: (f.name.endswith(".jsonl") and
                                                                       not f.name.endswith(".skipped.jsonl"), f.name)):
            if f.name.startswith("."):
                continue
            dest = out / CHUNK_DIR / f.name
            if f.name.endswith(".part.json") and dest.exists() and \
                    json.loads(dest.read_text(encoding="utf-8")) != json.loads(f.read_text(encoding="utf-8")):
                raise CapcseError(f"{other}: its input set for part {f.name[:7]} differs from the one recorded in "
                                  f"{out} (images added, removed or changed between the shard runs)")
            if not dest.exists():
                with open(f, "rb") as src, atomic_open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return assemble(out)
