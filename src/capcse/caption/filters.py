"""Caption corpus filters: length in characters / tokens, exact and near duplicates, with a report.

Filters run in this order, each on what the previous ones kept, and the report counts what each one
removed (so the counts add up to ``input - kept``):

1. ``empty``: a caption that is empty after collapsing whitespace;
2. ``min_chars`` / ``max_chars``: keep ``min_chars <= len(caption) <= max_chars`` where ``len`` counts
   the characters of the caption with its whitespace collapsed. The seed keeps captions of *at least*
   40 characters: ``--min-chars 40``. (``--max-chars 40`` keeps the short ones instead.)
3. ``min_tokens`` / ``max_tokens``: the same bounds on the number of tokens: whitespace-separated words,
   or the tokens of a Hugging Face tokenizer without special tokens when one is given;
4. ``exact_duplicates``: a caption whose *normalised text* equals that of an earlier kept caption;
   normalised = Unicode NFKC, lower-cased, every character that is not a letter or digit replaced by a
   space, whitespace collapsed ("A dog, running." == "a dog running");
5. ``near_duplicates``: a caption whose shingle set has Jaccard similarity ``>= near_dup_threshold``
   with an earlier kept caption. Shingles are the word n-grams (``ngram``, default 2) of the normalised
   text (a text shorter than n words is one shingle). Candidate pairs come from MinHash LSH
   (``num_perm`` hash functions in ``bands`` bands); every candidate is then checked with the *exact*
   Jaccard, so nothing under the threshold is ever removed. A pair at the threshold ``t`` becomes a
   candidate with probability ``1 - (1 - t^r)^b`` (r = num_perm / bands): 0.9998 for the defaults
   (64, 16) at t = 0.8, and higher above it.

Earlier = earlier in the file: the first of a group of duplicates is the one kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from capcse.errors import CapcseError, DataFormatError
from capcse.io import atomic_open, atomic_write_json

_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_MERSENNE = (1 << 61) - 1


def normalise(text: str) -> str:
    """NFKC, lower case, non-alphanumerics -> space, whitespace collapsed."""
    return " ".join(_NON_ALNUM.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def shingles(norm_text: str, n: int = 2) -> set[str]:
    words = norm_text.split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class MinHashLSH:
    """MinHash signatures ((a*x + b) mod 2^61-1 over 64-bit shingle hashes) banded into LSH buckets."""

    def __init__(self, num_perm: int = 64, bands: int = 16, seed: int = 1):
        import numpy as np

        if num_perm % bands:
            raise CapcseError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.num_perm, self.bands, self.rows = num_perm, bands, num_perm // bands
        rng = np.random.default_rng(seed)
        # Python ints: exact modular arithmetic without uint64 overflow
        self.a = [int(x) for x in rng.integers(1, _MERSENNE, size=num_perm, dtype=np.uint64)]
        self.b = [int(x) for x in rng.integers(0, _MERSENNE, size=num_perm, dtype=np.uint64)]
        self.buckets: list[dict[int, list[int]]] = [dict() for _ in range(bands)]

    @staticmethod
    def _hash(shingle: str) -> int:
        return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "little") % _MERSENNE

    def band_keys(self, sh: set[str]) -> list[int]:
        hs = [self._hash(s) for s in sh] or [0]
        sig = [min((a * h + b) % _MERSENNE for h in hs) for a, b in zip(self.a, self.b)]
        r = self.rows
        return [hash(tuple(sig[i * r:(i + 1) * r])) for i in range(self.bands)]

    def candidates(self, keys: list[int]) -> set[int]:
        out: set[int] = set()
        for band, key in enumerate(keys):
            out.update(self.buckets[band].get(key, ()))
        return out

    def insert(self, idx: int, keys: list[int]) -> None:
        for band, key in enumerate(keys):
            self.buckets[band].setdefault(key, []).append(idx)

    def detection_probability(self, similarity: float) -> float:
        return 1.0 - (1.0 - similarity ** self.rows) ** self.bands


@dataclass
class FilterConfig:
    min_chars: int | None = None
    max_chars: int | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    tokenizer: str | None = None  # None: whitespace words
    dedup: bool = False
    near_dup_threshold: float | None = None
    ngram: int = 2
    num_perm: int = 64
    bands: int = 16

    def __post_init__(self):
        if self.near_dup_threshold is not None and not 0.0 < self.near_dup_threshold <= 1.0:
            raise CapcseError(f"--near-dup must be in (0, 1], got {self.near_dup_threshold}")
        if self.ngram < 1:
            raise CapcseError("--ngram must be >= 1")


FILTER_ORDER = ("empty", "min_chars", "max_chars", "min_tokens", "max_tokens", "exact_duplicates", "near_duplicates")


def _token_counter(name: str | None) -> Callable[[str], int]:
    if name is None:
        return lambda text: len(text.split())
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def filter_captions(captions: Iterable[str], cfg: FilterConfig) -> tuple[list[int], list[dict[str, Any]], dict[str, Any]]:
    """Apply the filters. Returns (kept indices, removed entries ``{index, caption, filter[, duplicate_of]}``, report)."""
    count_tokens = _token_counter(cfg.tokenizer) if (cfg.min_tokens is not None or cfg.max_tokens is not None) else None
    lsh = MinHashLSH(cfg.num_perm, cfg.bands) if cfg.near_dup_threshold is not None else None
    seen: dict[str, int] = {}
    kept: list[int] = []
    kept_shingles: dict[int, set[str]] = {}
    removed: list[dict[str, Any]] = []
    counts = {k: 0 for k in FILTER_ORDER}
    n = 0

    def drop(i: int, text: str, name: str, dup: int | None = None):
        counts[name] += 1
        entry: dict[str, Any] = {"index": i, "caption": text, "filter": name}
        if dup is not None:
            entry["duplicate_of"] = dup
        removed.append(entry)

    for i, raw in enumerate(captions):
        n += 1
        text = " ".join(str(raw).split())
        if not text:
            drop(i, text, "empty")
            continue
        if cfg.min_chars is not None and len(text) < cfg.min_chars:
            drop(i, text, "min_chars")
            continue
        if cfg.max_chars is not None and len(text) > cfg.max_chars:
            drop(i, text, "max_chars")
            continue
        if count_tokens is not None:
            nt = count_tokens(text)
            if cfg.min_tokens is not None and nt < cfg.min_tokens:
                drop(i, text, "min_tokens")
                continue
            if cfg.max_tokens is not None and nt > cfg.max_tokens:
                drop(i, text, "max_tokens")
                continue
        norm = normalise(text)
        if cfg.dedup:
            if norm in seen:
                drop(i, text, "exact_duplicates", seen[norm])
                continue
            seen[norm] = i
        if lsh is not None:
            sh = shingles(norm, cfg.ngram)
            keys = lsh.band_keys(sh)
            match = None
            for j in sorted(lsh.candidates(keys)):
                if jaccard(sh, kept_shingles[j]) >= cfg.near_dup_threshold:
                    match = j
                    break
            if match is not None:
                drop(i, text, "near_duplicates", match)
                continue
            lsh.insert(i, keys)
            kept_shingles[i] = sh
        kept.append(i)

    report: dict[str, Any] = {"input": n, "kept": len(kept), "removed": counts,
                              "removed_total": sum(counts.values()), "config": asdict(cfg)}
    if lsh is not None:
        report["near_dup_detection_probability_at_threshold"] = round(
            lsh.detection_probability(cfg.near_dup_threshold), 6)
    return kept, removed, report


def read_corpus(path: str | os.PathLike, field: str = "caption") -> tuple[list[str], list[dict] | None]:
    """Captions of a ``.txt`` (one per line), a ``.jsonl`` (``field`` of each record) or a caption run folder."""
    p = Path(path)
    if p.is_dir():
        if not (p / "captions.jsonl").exists():
            raise CapcseError(f"{p}: no captions.jsonl (is the caption run finished?)")
        p = p / "captions.jsonl"
    if not p.exists():
        raise CapcseError(f"caption file not found: {p}")
    if p.suffix.lower() == ".jsonl":
        records: list[dict] = []
        with open(p, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFormatError(p, lineno, f"invalid JSON: {exc.msg}") from None
                if not isinstance(rec, dict) or field not in rec:
                    raise DataFormatError(p, lineno, f"record has no {field!r} field")
                records.append(rec)
        return [str(r[field]) for r in records], records
    with open(p, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh], None


def filter_corpus(src: str | os.PathLike, out: str | os.PathLike, cfg: FilterConfig, field: str = "caption") -> dict:
    """Filter a corpus file into ``out/``: ``filtered.txt`` (+ ``filtered.jsonl`` for JSONL input),
    ``removed.jsonl`` (each removed caption, its line index, the filter and the duplicate's index) and
    ``report.json``."""
    captions, records = read_corpus(src, field)
    kept, removed, report = filter_captions(captions, cfg)
    out = Path(out)
    with atomic_open(out / "filtered.txt") as fh:
        for i in kept:
            fh.write(" ".join(captions[i].split()) + "\n")
    if records is not None:
        with atomic_open(out / "filtered.jsonl") as fh:
            for i in kept:
                fh.write(json.dumps(records[i], ensure_ascii=False) + "\n")
    with atomic_open(out / "removed.jsonl") as fh:
        for r in removed:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    report["source"] = str(src)
    report["outputs"] = {"txt": "filtered.txt", "jsonl": "filtered.jsonl" if records is not None else None,
                         "removed": "removed.jsonl"}
    atomic_write_json(out / "report.json", report)
    return report
