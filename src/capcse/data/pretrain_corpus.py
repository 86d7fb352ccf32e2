"""Leakage-checked pretraining corpora: every local sentence that no evaluation uses.

A masked-LM encoder pretrained here (``capcse pretrain``) must never have read a sentence it is later
evaluated on. :func:`build_corpus` gathers the training-only text of the local data sets (per language,
:data:`SOURCES`), gathers every sentence of every evaluation set (:data:`EVAL_SETS`), and drops each
corpus sentence that matches an evaluation sentence under either of two keys:

* ``exact``: lower-cased, whitespace-normalised text (the check the corpus is specified by);
* ``strict``: lower-cased text with everything but letters and digits removed, so that a Moses-tokenised
  SentEval copy (``do n't`` / ``, ``) matches its raw, untokenised original (``don't`` / ``,``).

Within the corpus, exact duplicates (by the ``exact`` key) are kept once. The report
(:class:`CorpusReport`) gives sentences and tokens per source (the genre mix), how many sentences each
evaluation set knocked out, and the matches left after filtering (always 0: :func:`check_leakage`
re-checks the written file from scratch).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from capcse.errors import ConfigError

log = logging.getLogger(__name__)

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def exact_key(text: str) -> str:
    """Lower-cased, whitespace-normalised text."""
    return " ".join(text.lower().split())


def strict_key(text: str) -> str:
    """Lower-cased text with every non-letter, non-digit character removed (tokenisation-blind)."""
    return _NON_WORD.sub("", text.lower())


# ------------------------------------------------------------------------------------------ text sources
def _sts_sentences(name: str, split: str, data_dir, variant: str = "senteval") -> Iterator[str]:
    from capcse.data.loaders import load_sts

    for data in load_sts(name, split, data_dir=data_dir, variant=variant, download=False).values():
        yield from data.sentences1
        yield from data.sentences2


def _sts_both_variants(name: str, split: str, data_dir) -> Iterator[str]:
    yield from _sts_sentences(name, split, data_dir, "senteval")
    try:
        yield from _sts_sentences(name, split, data_dir, "raw")
    except Exception as exc:  # noqa: BLE001 - the raw copy is optional; the SentEval copy was read
        log.info("%s %s: no raw variant (%s); the SentEval copy is checked", name, split, exc)


def _transfer_sentences(name: str, split: str, data_dir) -> Iterator[str]:
    from capcse.data.loaders import load_transfer

    data = load_transfer(name, data_dir=data_dir, download=False)
    items, _ = data.splits[split]
    for item in items:
        if isinstance(item, tuple):
            yield from item
        else:
            yield item


def _captions(name: str, split: str, data_dir) -> Iterator[str]:
    from capcse.data.loaders import load_caption_table

    for row in load_caption_table(name, data_dir=data_dir, download=False, split=split):
        yield row.caption


def _wiki(data_dir) -> Iterator[str]:
    from capcse.data.corpora import read_text_corpus
    from capcse.data.resolve import locate

    yield from read_text_corpus(locate("wiki1m", data_dir=data_dir, download=False).path)


def _data_file(rel: str, data_dir, reader: Callable[[Path], Iterable[str]]) -> Iterator[str]:
    from capcse.data.registry import data_roots
    from capcse.errors import DataNotFoundError

    roots = data_roots(data_dir)
    for root in roots:
        if (root / rel).is_file():
            yield from reader(root / rel)
            return
    raise DataNotFoundError(f"{rel}: not found under {', '.join(map(str, roots)) or '(no data folder)'}")


def _lines(path: Path) -> list[str]:
    from capcse.data._text import read_lines

    return [line for line in read_lines(path) if line.strip()]


def _korean_nli(split: str, data_dir) -> Iterator[str]:
    from capcse.data.corpora import load_nli_pairs
    from capcse.data.resolve import locate

    folder = locate("kornli-xnli", data_dir=data_dir, download=False).path
    for pair in load_nli_pairs(Path(folder) / f"xnli.{split}.ko.tsv"):
        yield pair.sentence1
        yield pair.sentence2


@dataclass(frozen=True)
class TextSource:
    name: str
    genre: str
    read: Callable[[object], Iterable[str]]  # data_dir -> sentences


#: Training-only text per language. Korean: KorSTS train and the XNLI-ko dev/test sentences (the KorNLI
#: training files are not available offline; SimCSE-KO's sup recipe reads XNLI-ko dev triplets, which is
#: training text, never evaluation).
SOURCES: dict[str, tuple[TextSource, ...]] = {
    "en": (
        TextSource("wiki1m", "encyclopedia", _wiki),
        TextSource("flickr30k-train-captions", "image captions", lambda d: _captions("flickr30k-captions", "train", d)),
        TextSource("coco-val2017-captions", "image captions", lambda d: _captions("coco-captions", "val2017", d)),
        TextSource("stsb-train", "news/forums/captions (STS-B)", lambda d: _sts_sentences("stsb", "train", d, "raw")),
        TextSource("sick-train", "captions, normalised (SICK)", lambda d: _sts_sentences("sickr", "train", d)),
        TextSource("sst-train", "movie reviews", lambda d: _transfer_sentences("sst5", "train", d)),
        TextSource("trec-train", "questions", lambda d: _transfer_sentences("trec", "train", d)),
        TextSource("mrpc-train", "news", lambda d: _transfer_sentences("mrpc", "train", d)),
    ),
    "ko": (
        TextSource("korsts-train", "news/forums/captions (KorSTS)", lambda d: _sts_sentences("korsts", "train", d)),
        TextSource("xnli-ko-dev", "NLI (XNLI-ko)", lambda d: _korean_nli("dev", d)),
        TextSource("xnli-ko-test", "NLI (XNLI-ko)", lambda d: _korean_nli("test", d)),
    ),
}

_STS_YEARS = ("sts12", "sts13", "sts14", "sts15", "sts16")

#: Every sentence any evaluation reads, per language: name -> reader(data_dir).
EVAL_SETS: dict[str, dict[str, Callable[[object], Iterable[str]]]] = {
    "en": {
        **{f"{y}-test": (lambda d, y=y: _sts_both_variants(y, "test", d)) for y in _STS_YEARS},
        "stsb-dev": lambda d: _sts_both_variants("stsb", "dev", d),
        "stsb-test": lambda d: _sts_both_variants("stsb", "test", d),
        "sick-dev": lambda d: _sts_sentences("sickr", "dev", d),
        "sick-test": lambda d: _sts_sentences("sickr", "test", d),
        # MR/CR/SUBJ/MPQA are scored by cross-validation over all of their sentences
        **{t: (lambda d, t=t: _transfer_sentences(t, "all", d)) for t in ("mr", "cr", "subj", "mpqa")},
        "sst2-dev": lambda d: _transfer_sentences("sst2", "dev", d),
        "sst2-test": lambda d: _transfer_sentences("sst2", "test", d),
        "sst5-dev": lambda d: _transfer_sentences("sst5", "dev", d),
        "sst5-test": lambda d: _transfer_sentences("sst5", "test", d),
        "trec-test": lambda d: _transfer_sentences("trec", "test", d),
        "mrpc-test": lambda d: _transfer_sentences("mrpc", "test", d),
        "flickr30k-val-captions": lambda d: _captions("flickr30k-captions", "val", d),
        "flickr30k-test-captions": lambda d: _captions("flickr30k-captions", "test", d),
        **{f"karpathy-{n}": (lambda d, n=n: _data_file(f"coco_karpathy_test_captions_textonly/{n}_caps.txt", d, _lines))
           for n in ("coco_dev", "coco_test", "coco_testall", "f30k_dev", "f30k_test")},
    },
    "ko": {
        "korsts-dev": lambda d: _sts_sentences("korsts", "dev", d),
        "korsts-test": lambda d: _sts_sentences("korsts", "test", d),
    },
}


# ------------------------------------------------------------------------------------------ the report
@dataclass
class SourceStats:
    name: str
    genre: str
    read: int = 0             # non-empty sentences read
    duplicates: int = 0       # exact duplicates of an earlier corpus sentence (kept once)
    leaked: int = 0           # dropped: matches an evaluation sentence
    kept: int = 0
    tokens: int = 0           # tokens of the kept sentences (without special tokens)


@dataclass
class CorpusReport:
    language: str
    path: str
    sentences: int = 0
    tokens: int = 0
    tokenizer: str = ""
    sources: list[SourceStats] = field(default_factory=list)
    eval_sets: dict[str, int] = field(default_factory=dict)          # evaluation set -> its distinct sentences
    dropped_by_eval_set: dict[str, int] = field(default_factory=dict)  # evaluation set -> corpus sentences it removed
    matches_before: dict[str, int] = field(default_factory=dict)     # {"exact": n, "strict": n} before filtering
    matches_after: dict[str, int] = field(default_factory=dict)      # the same on the written corpus (0, 0)
    sha256: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def genre_mix(self) -> dict[str, float]:
        """Share of the corpus's tokens per genre."""
        out: dict[str, float] = {}
        for s in self.sources:
            out[s.genre] = out.get(s.genre, 0.0) + s.tokens
        return {g: round(t / self.tokens, 4) for g, t in out.items()} if self.tokens else out

    def markdown(self) -> str:
        lines = [f"Corpus `{self.path}` ({self.language}): **{self.sentences:,} sentences, {self.tokens:,} tokens** "
                 f"({self.tokenizer}); evaluation matches after filtering: exact {self.matches_after.get('exact')}, "
                 f"strict {self.matches_after.get('strict')}.", "",
                 "| source | genre | read | duplicates | dropped (in an evaluation set) | kept | tokens |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        for s in self.sources:
            lines.append(f"| {s.name} | {s.genre} | {s.read:,} | {s.duplicates:,} | {s.leaked:,} | {s.kept:,} | {s.tokens:,} |")
        lines += ["", "| evaluation set | distinct sentences | corpus sentences it removed |", "|---|---:|---:|"]
        for name, n in self.eval_sets.items():
            lines.append(f"| {name} | {n:,} | {self.dropped_by_eval_set.get(name, 0):,} |")
        return "\n".join(lines) + "\n"


def write_report(report: CorpusReport, corpus_path: str | Path) -> None:
    """The report beside the corpus file: ``<corpus>.json`` (with the genre mix) and ``<corpus>.md``."""
    from capcse.io import atomic_write_json, atomic_write_text

    corpus_path = Path(corpus_path)
    atomic_write_json(corpus_path.with_suffix(".json"), {**report.to_dict(), "genre_mix": report.genre_mix()})
    atomic_write_text(corpus_path.with_suffix(".md"), report.markdown())


# ------------------------------------------------------------------------------------------ building
@dataclass
class EvalIndex:
    """Keys of every evaluation sentence, with the first evaluation set each key came from."""

    exact: dict[str, str] = field(default_factory=dict)
    strict: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, set_name: str, sentences: Iterable[str]) -> None:
        seen = set()
        for s in sentences:
            e = exact_key(s)
            if not e:
                continue
            seen.add(e)
            self.exact.setdefault(e, set_name)
            k = strict_key(s)
            if k:
                self.strict.setdefault(k, set_name)
        self.sizes[set_name] = len(seen)

    def match(self, sentence: str) -> tuple[str | None, str | None]:
        """(evaluation set matched by the exact key, by the strict key); None where no match."""
        return self.exact.get(exact_key(sentence)), self.strict.get(strict_key(sentence))


def eval_index(language: str, data_dir=None, extra: dict[str, Iterable[str]] | None = None) -> EvalIndex:
    """Every evaluation sentence of ``language``; ``extra`` adds sets (name -> sentences)."""
    if language not in EVAL_SETS:
        raise ConfigError(f"no evaluation sets for language {language!r}; known: {', '.join(EVAL_SETS)}")
    index = EvalIndex()
    for name, read in EVAL_SETS[language].items():
        index.add(name, read(data_dir))
    for name, sentences in (extra or {}).items():
        index.add(name, sentences)
    return index


def check_leakage(sentences: Iterable[str], index: EvalIndex) -> dict[str, int]:
    """How many of ``sentences`` match an evaluation sentence, by each key."""
    exact = strict = 0
    for s in sentences:
        e, k = index.match(s)
        exact += e is not None
        strict += k is not None
    return {"exact": exact, "strict": strict}


def build_corpus(language: str, out_path: str | Path, *, data_dir=None, tokenizer=None,
                 sources: Iterable[TextSource] | None = None, index: EvalIndex | None = None,
                 sentence_limit: int | None = None) -> CorpusReport:
    """Write the leakage-filtered corpus of ``language`` to ``out_path`` (one sentence per line, in source
    order) and return its report. ``tokenizer`` (a transformers tokenizer) counts tokens; ``sources`` and
    ``index`` replace the defaults (tests plant sentences this way); ``sentence_limit`` caps a source
    (e.g. the full 1M-line wiki1m)."""
    from capcse.io import atomic_open

    if language not in SOURCES and sources is None:
        raise ConfigError(f"no corpus sources for language {language!r}; known: {', '.join(SOURCES)}")
    index = index if index is not None else eval_index(language, data_dir)
    report = CorpusReport(language=language, path=str(out_path),
                          tokenizer=getattr(tokenizer, "name_or_path", "") or "")
    report.eval_sets = dict(index.sizes)
    seen: set[str] = set()
    exact_before = strict_before = 0
    digest = hashlib.sha256()
    with atomic_open(out_path, "w") as fh:
        for src in (sources if sources is not None else SOURCES[language]):
            stats = SourceStats(src.name, src.genre)
            kept: list[str] = []
            for raw in src.read(data_dir):
                text = " ".join(raw.split())
                if not text:
                    continue
                stats.read += 1
                if sentence_limit is not None and stats.read > sentence_limit:
                    stats.read -= 1
                    break
                by_exact, by_strict = index.match(text)
                exact_before += by_exact is not None
                strict_before += by_strict is not None
                hit = by_exact or by_strict
                if hit is not None:
                    stats.leaked += 1
                    report.dropped_by_eval_set[hit] = report.dropped_by_eval_set.get(hit, 0) + 1
                    continue
                key = exact_key(text)
                if key in seen:
                    stats.duplicates += 1
                    continue
                seen.add(key)
                kept.append(text)
            stats.kept = len(kept)
            if tokenizer is not None and kept:
                ids = tokenizer(kept, add_special_tokens=False)["input_ids"]
                stats.tokens = sum(len(x) for x in ids)
            for text in kept:
                line = text + "\n"
                fh.write(line)
                digest.update(line.encode("utf-8"))
            report.sources.append(stats)
            log.info("corpus %s: %s read %d, kept %d", language, src.name, stats.read, stats.kept)
    report.sentences = sum(s.kept for s in report.sources)
    report.tokens = sum(s.tokens for s in report.sources)
    report.matches_before = {"exact": exact_before, "strict": strict_before}
    from capcse.data._text import read_lines

    report.matches_after = check_leakage(read_lines(out_path), index)
    report.sha256 = digest.hexdigest()
    if report.sentences == 0:
        raise ConfigError(f"corpus {language}: no sentence left (sources: "
                          + ", ".join(f"{s.name} read {s.read}" for s in report.sources) + ")")
    return report
