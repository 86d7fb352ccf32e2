"""Verifying a copy of a data set: it is read with the real readers and its item counts held against the
catalog's (:attr:`~capcse.data.registry.DatasetSpec.expected`).

The downloader verifies a staged copy with :func:`verify_copy` before it installs it; ``capcse data list``
(:func:`capcse.data.resolve.list_datasets`) verifies every local copy the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from capcse.data.corpora import caption_counts, count_lines, load_nli_pairs, read_caption_table, read_text_corpus
from capcse.data.registry import WIKI1M_FIRST_LINE, DatasetSpec, Layout
from capcse.data.sts import read_sts_split
from capcse.data.transfer import read_transfer
from capcse.errors import CapcseError, ConfigError


def count_items(spec: DatasetSpec, layout: Layout, path: Path) -> dict[str, int]:
    """Count the items of a copy at ``path`` by reading it with the real loaders (keys as in ``expected``)."""
    if spec.kind == "sts":
        return {split: sum(len(d) for d in read_sts_split(spec, layout, path, split).values()) for split in spec.splits}
    if spec.kind == "transfer":
        return {split: len(items) for split, (items, _) in read_transfer(spec.name, path).splits.items()}
    if spec.kind == "nli":
        return {split: len(load_nli_pairs(path / f"xnli.{split}.ko.tsv")) for split in spec.splits}
    if spec.kind == "corpus":
        return {"lines": count_lines(path)}
    if spec.kind == "captions":
        return caption_counts(read_caption_table(path))
    raise ConfigError(f"no counter for kind {spec.kind!r}")  # pragma: no cover


def compare_counts(counts: Mapping[str, int], expected: Mapping[str, int]) -> bool:
    """True when every expected count is matched (extra keys in ``counts`` are allowed)."""
    return all(counts.get(k) == v for k, v in expected.items())


def verify_copy(spec: DatasetSpec, layout: Layout, path: Path) -> dict:
    """Read a copy and compare its counts; returns ``{"counts", "expected", "ok", "status", "note"}``."""
    expected = dict(spec.expected_for(layout))
    note = layout.note
    try:
        counts = count_items(spec, layout, path)
    except CapcseError as exc:
        return {"counts": {}, "expected": expected, "ok": False, "status": "error", "note": str(exc)}
    ok = compare_counts(counts, expected)
    if spec.name == "wiki1m" and layout.partial and ok:
        first = next(iter(read_text_corpus(path, skip_empty=False)), None)
        if first != WIKI1M_FIRST_LINE:
            ok, note = False, f"first line {first!r} is not the wiki1m first line {WIKI1M_FIRST_LINE!r}"
    status = ("prefix" if layout.partial else "ok") if ok else "mismatch"
    return {"counts": counts, "expected": expected, "ok": ok, "status": status, "note": note}
