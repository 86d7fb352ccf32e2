"""The data registry: a catalog of every named data set capcse reads, where it lives, its size and its origin.

A :class:`DatasetSpec` names one data set. Its :class:`Layout` s say which folders (or files) hold it under a
data root — SentEval's ``downstream/`` layout, an original release, or the folder names of the shared data
copy — which files must be there, and the :class:`Source` s it can be downloaded from. ``expected`` holds the
item counts every copy is verified against (pairs for STS, sentences for transfer sets, captions, lines).
:func:`data_roots` lists the data roots to look in (``data_dir``, ``CAPCSE_DATA``, the user cache).

The catalog reads no data and imports no reader: the readers (:mod:`~capcse.data.sts`,
:mod:`~capcse.data.transfer`, :mod:`~capcse.data.corpora`), the verification (:mod:`capcse.data.verify`), the
downloader (:mod:`capcse.data.download`) and the resolution (:mod:`capcse.data.resolve`: :func:`~capcse.data.resolve.locate`,
:func:`~capcse.data.resolve.resolve_dataset`) depend on it, never the reverse.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from capcse.data._checksums import SHA256
from capcse.errors import ConfigError

#: the two text variants of the STS sets
STS_VARIANTS = ("senteval", "raw")


# --------------------------------------------------------------------------------------------- spec types
@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    ``dest`` is where the file goes relative to the installed folder (``"."``: the download *is* the
    installed file, or, for an archive, the archive's data folder becomes the installed folder).
    ``sha256`` is the checksum of the downloaded bytes, ``None`` when not known (then the item counts are
    verified instead). ``unpack`` is ``None`` (a plain file), ``"zip"``, ``"tar"`` (any compression) or
    ``"gz"`` (a single gzipped file). Inside an archive the data folder is found by looking for the layout's
    required files; ``keep`` (glob patterns relative to that folder) limits which members are extracted.
    """

    url: str
    dest: str = "."
    sha256: str | None = None
    unpack: str | None = None
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """One way to obtain a layout: every file in ``files`` is needed."""

    label: str
    files: tuple[RemoteFile, ...]

    @property
    def checksummed(self) -> bool:
        return all(f.sha256 for f in self.files)


@dataclass(frozen=True)
class Layout:
    """Where one variant of a data set lives under a data root.

    ``paths`` are tried in order under every data root (the first is where a download installs it). A
    folder counts as found when every ``required`` file is in it; a layout with no required files is a single
    file. ``partial`` marks a known subset (the 11,914-line wiki1m prefix): it is used only when the full data
    cannot be found or downloaded, and verified against its own ``expected`` counts.
    """

    variant: str
    paths: tuple[str, ...]
    required: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    partial: bool = False
    expected: Mapping[str, int] | None = None
    note: str = ""

    @property
    def is_file(self) -> bool:
        return not self.required

    def missing(self, path: Path) -> list[str]:
        """The required files absent from ``path`` (``["<path>"]`` when the path itself is absent)."""
        if self.is_file:
            return [] if path.is_file() else [str(path)]
        if not path.is_dir():
            return [str(path)]
        return [r for r in self.required if not (path / r).is_file()]


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set. ``expected`` maps a split (or count key) to its number of ``unit`` items."""

    name: str
    kind: str  # "sts" | "transfer" | "nli" | "corpus" | "captions"
    description: str
    unit: str
    expected: Mapping[str, int]
    origin: tuple[str, ...]
    license: str
    layouts: tuple[Layout, ...]
    default_variant: str | None = None
    subsets: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    n_classes: int | None = None
    label_names: tuple[str, ...] = ()
    notes: str = ""

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(lay.variant for lay in self.layouts)

    @property
    def checksums_known(self) -> bool:
        return any(src.checksummed for lay in self.layouts for src in lay.sources)

    def expected_for(self, layout: Layout) -> Mapping[str, int]:
        return layout.expected if layout.expected is not None else self.expected

    def layouts_for(self, variant: str | None) -> tuple[Layout, ...]:
        """Layouts to use for ``variant``; ``None`` means the default variant, or every full layout.

        Data sets with a single text variant (SICK, KorSTS, ...) accept ``"raw"`` and ``"senteval"`` too.
        """
        if variant is None:
            if self.default_variant is not None:
                return tuple(lay for lay in self.layouts if lay.variant == self.default_variant)
            return tuple(lay for lay in self.layouts if not lay.partial)
        chosen = tuple(lay for lay in self.layouts if lay.variant == variant)
        if chosen:
            return chosen
        if variant in STS_VARIANTS and len({lay.variant for lay in self.layouts if not lay.partial}) == 1:
            return tuple(lay for lay in self.layouts if not lay.partial)
        raise ConfigError(
            f"data set {self.name!r} has no variant {variant!r}; variants: {', '.join(self.variants)}"
        )


# --------------------------------------------------------------------------------------------- origins
_GH = "https://raw.githubusercontent.com"
#: SentEval's downstream/ layout (Moses-tokenised; STS lower-cased), byte-identical to the shared copy
_SENTEVAL_GH = f"{_GH}/yan-soares/research_embeddings_fine_tuning/045c5e94572a60c6bd7173e152c897f6b694c5a8/data/downstream"
#: the original (untokenised, cased) STS releases as SentEval's script unpacks them
_SYNWMD_GH = f"{_GH}/amao0o0/SynWMD/59042a92e862db58bd01e47914345d2f52d2a4a3/data/downstream/STS"
_KAKAO_GH = f"{_GH}/kakaobrain/kor-nlu-datasets/0df0fe7d496eb61b092e022e238c2230b29f1cbc"
_MULTI30K_GH = f"{_GH}/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task2"
_SIMCSE_HF = "https://huggingface.co/datasets/princeton-nlp/datasets-for-simcse/resolve/main"
_SENTEVAL_TAR = f"{_SIMCSE_HF}/senteval.tar"
_STSWIKI = "http://ixa2.si.ehu.es/stswiki/images"
_SENTEVAL_SCRIPT = "https://github.com/facebookresearch/SentEval/blob/main/data/downstream/get_transfer_data.bash"
_FBAI = "https://dl.fbaipublicfiles.com/senteval/senteval_data"


def _pinned(label: str, base: str, key: str, folder: str, files: tuple[str, ...]) -> Source:
    """A per-file source from a pinned git commit, every file with its known sha256."""
    return Source(
        label,
        tuple(RemoteFile(f"{base}/{folder}/{f}", dest=f, sha256=SHA256[f"{key}/{folder}/{f}"]) for f in files),
    )


def _senteval_paths(rel: str) -> tuple[str, ...]:
    """Where SentEval's ``downstream/<rel>`` may sit under a data root."""
    return (f"downstream/{rel}", rel, f"data/downstream/{rel}", f"SentEval/data/downstream/{rel}")


def _senteval_sources(rel: str, files: tuple[str, ...]) -> tuple[Source, ...]:
    return (
        _pinned("SentEval downstream/ copy on GitHub (pinned commit, sha256 verified)", _SENTEVAL_GH, "senteval", rel, files),
        Source(
            "SimCSE's senteval.tar (checksum not published: item counts verified)",
            (RemoteFile(_SENTEVAL_TAR, unpack="tar"),),
        ),
    )


def _senteval_layout(rel: str, files: tuple[str, ...], variant: str = "senteval") -> Layout:
    return Layout(variant, _senteval_paths(rel), required=files, sources=_senteval_sources(rel, files))


# --------------------------------------------------------------------------------------------- STS
_STS_SUBSETS = {
    "sts12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "sts13": ("FNWN", "headlines", "OnWN"),
    "sts14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "sts15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "sts16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
_STS_COUNTS = {"sts12": 3108, "sts13": 1500, "sts14": 3750, "sts15": 3000, "sts16": 1186}
#: year -> (SentEval folder, shared-data raw folder, folder inside the original zip, zip URL)
_STS_RELEASES = {
    "sts12": ("STS12-en-test", "STS2012-en-test-gold", "test-gold", f"{_STSWIKI}/4/40/STS2012-en-test.zip"),
    "sts13": ("STS13-en-test", "STS2013-en-test-gs", "test-gs", f"{_STSWIKI}/2/2f/STS2013-en-test.zip"),
    "sts14": ("STS14-en-test", "STS2014-en-test-gs", "sts-en-test-gs-2014", f"{_STSWIKI}/8/8c/STS2014-en-test.zip"),
    "sts15": ("STS15-en-test", "STS2015-en-test-gs", "test_evaluation_task2a", f"{_STSWIKI}/d/da/STS2015-en-test.zip"),
    "sts16": ("STS16-en-test", "STS2016-en-test-gs", "sts2016-english-with-gs-v1.0", f"{_STSWIKI}/9/98/STS2016-en-test.zip"),
}
_STS_LICENSE = "scores CC BY-SA 4.0; texts under each source's terms (MSR, StackExchange CC BY-SA 3.0, ...)"


def sts_file_names(name: str, subset: str, variant: str) -> tuple[str, str]:
    """(input file, gold-score file) of one STS12-16 subset: the raw STS 2016 release prefixes ``STS2016.``."""
    prefix = "STS2016." if (name == "sts16" and variant == "raw") else "STS."
    return f"{prefix}input.{subset}.txt", f"{prefix}gs.{subset}.txt"


def _sts_year(name: str) -> DatasetSpec:
    senteval_dir, raw_dir, zip_dir, zip_url = _STS_RELEASES[name]
    subsets = _STS_SUBSETS[name]
    se_files = tuple(f for s in subsets for f in sts_file_names(name, s, "senteval"))
    raw_files = tuple(f for s in subsets for f in sts_file_names(name, s, "raw"))
    year = "20" + name[3:]
    raw = Layout(
        "raw",
        (f"sts_raw/{raw_dir}", raw_dir, f"STS/{senteval_dir}/{zip_dir}"),
        required=raw_files,
        sources=(
            _pinned("original release on GitHub (pinned commit, sha256 verified)", _SYNWMD_GH, "synwmd",
                    f"{senteval_dir}/{zip_dir}", raw_files),
            Source(f"STS {year} zip from the STS wiki (SentEval's URL; checksum not published: counts verified)",
                   (RemoteFile(zip_url, unpack="zip"),)),
        ),
    )
    notes = "pairs without a gold score are skipped, as SentEval does" if name in ("sts15", "sts16") else ""
    if name == "sts13":
        notes = "no SMT subset (its input is not distributed for licence reasons; SentEval drops it too)"
    return DatasetSpec(
        name=name,
        kind="sts",
        description=f"SemEval STS {year} English test sets (SentEval's subsets)",
        unit="pairs",
        expected=MappingProxyType({"test": _STS_COUNTS[name]}),
        origin=(zip_url, _SENTEVAL_SCRIPT),
        license=_STS_LICENSE,
        layouts=(_senteval_layout(f"STS/{senteval_dir}", se_files), raw),
        default_variant="senteval",
        subsets=subsets,
        splits=("test",),
        notes=notes,
    )


_STSB_FILES = ("sts-train.csv", "sts-dev.csv", "sts-test.csv")
_STSB = DatasetSpec(
    name="stsb",
    kind="sts",
    description="STS Benchmark (Cer et al. 2017)",
    unit="pairs",
    expected=MappingProxyType({"train": 5749, "dev": 1500, "test": 1379}),
    origin=(f"{_STSWIKI}/4/48/Stsbenchmark.tar.gz", _SENTEVAL_SCRIPT),
    license=_STS_LICENSE,
    layouts=(
        _senteval_layout("STS/STSBenchmark", _STSB_FILES),
        Layout(
            "raw",
            ("sts_raw/stsbenchmark", "stsbenchmark", "STS/STSBenchmark/stsbenchmark"),
            required=_STSB_FILES,
            sources=(
                _pinned("original release on GitHub (pinned commit, sha256 verified)", _SYNWMD_GH, "synwmd",
                        "STSBenchmark/stsbenchmark", _STSB_FILES),
                Source("Stsbenchmark.tar.gz from the STS wiki (checksum not published: counts verified)",
                       (RemoteFile(f"{_STSWIKI}/4/48/Stsbenchmark.tar.gz", unpack="tar"),)),
            ),
        ),
    ),
    default_variant="senteval",
    splits=("train", "dev", "test"),
    notes="score, sentence1, sentence2 are tab columns 5-7; a few raw lines carry 2 extra source columns",
)

_SICK_FILES = ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt")
_SICKR = DatasetSpec(
    name="sickr",
    kind="sts",
    description="SICK relatedness (Marelli et al. 2014): train / trial (dev) / test_annotated",
    unit="pairs",
    expected=MappingProxyType({"train": 4500, "dev": 500, "test": 4927}),
    origin=(
        "http://alt.qcri.org/semeval2014/task1/data/uploads/sick_train.zip",
        "http://alt.qcri.org/semeval2014/task1/data/uploads/sick_trial.zip",
        "http://alt.qcri.org/semeval2014/task1/data/uploads/sick_test_annotated.zip",
        _SENTEVAL_SCRIPT,
    ),
    license="CC BY-NC-SA 3.0",
    layouts=(_senteval_layout("SICK", _SICK_FILES),),
    splits=("train", "dev", "test"),
    notes="one header line per file; SICK_test_annotated.txt has CRLF line ends",
)


def _kakao(name: str, kind: str, description: str, folder: str, files: tuple[str, ...], expected: dict,
           splits: tuple[str, ...], notes: str) -> DatasetSpec:
    """A kakaobrain/kor-nlu-datasets set: its GitHub files are the public origin, with known sha256."""
    return DatasetSpec(
        name=name, kind=kind, description=description, unit="pairs", expected=MappingProxyType(expected),
        origin=tuple(f"{_KAKAO_GH}/{folder}/{f}" for f in files), license="CC BY-SA 4.0",
        layouts=(Layout("default", (folder.lower(), folder, f"kor-nlu-datasets/{folder}"), required=files,
                        sources=(_pinned("kakaobrain/kor-nlu-datasets (pinned commit, sha256 verified)", _KAKAO_GH,
                                         "kakaobrain", folder, files),)),),
        splits=splits, notes=notes,
    )


_KORSTS = _kakao("korsts", "sts", "KorSTS: Korean translation of STS-B (Ham et al. 2020)", "KorSTS",
                 ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"), {"train": 5749, "dev": 1500, "test": 1379},
                 ("train", "dev", "test"), "header line; columns genre filename year id score sentence1 sentence2")

# --------------------------------------------------------------------------------------------- transfer
_TRANSFER_FILES = {
    "mr": ("MR", ("rt-polarity.pos", "rt-polarity.neg")),
    "cr": ("CR", ("custrev.pos", "custrev.neg")),
    "subj": ("SUBJ", ("subj.objective", "subj.subjective")),
    "mpqa": ("MPQA", ("mpqa.pos", "mpqa.neg")),
    "sst2": ("SST/binary", ("sentiment-train", "sentiment-dev", "sentiment-test")),
    "sst5": ("SST/fine", ("sentiment-train", "sentiment-dev", "sentiment-test")),
    "trec": ("TREC", ("train_5500.label", "TREC_10.label")),
    "mrpc": ("MRPC", ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt")),
}
_BINCLASSIF = f"{_FBAI}/datasmall_NB_ACL12.zip"


def _transfer(name: str, description: str, expected: dict, origin: tuple[str, ...], n_classes: int,
              label_names: tuple[str, ...], splits: tuple[str, ...], notes: str = "",
              license: str = "research use (no licence file distributed)") -> DatasetSpec:
    folder, files = _TRANSFER_FILES[name]
    return DatasetSpec(
        name=name, kind="transfer", description=description, unit="sentences" if name != "mrpc" else "pairs",
        expected=MappingProxyType(expected), origin=origin + (_SENTEVAL_SCRIPT,), license=license,
        layouts=(_senteval_layout(folder, files, variant="default"),), splits=splits, n_classes=n_classes,
        label_names=label_names, notes=notes,
    )


_MR = _transfer("mr", "movie-review polarity (Pang & Lee 2005), 10-fold CV", {"all": 10662}, (_BINCLASSIF,), 2,
                ("negative", "positive"), ("all",))
_CR = _transfer("cr", "customer-review polarity (Hu & Liu 2004), 10-fold CV", {"all": 3775}, (_BINCLASSIF,), 2,
                ("negative", "positive"), ("all",),
                notes="4 empty lines are kept as empty sentences, as SentEval keeps them")
_SUBJ = _transfer("subj", "subjectivity (Pang & Lee 2004), 10-fold CV", {"all": 10000}, (_BINCLASSIF,), 2,
                  ("subjective", "objective"), ("all",), notes="label 1 = objective, as in SentEval")
_MPQA = _transfer("mpqa", "MPQA opinion polarity (Wiebe et al. 2005), 10-fold CV", {"all": 10606}, (_BINCLASSIF,),
                  2, ("negative", "positive"), ("all",),
                  notes="3 empty lines are kept as empty sentences, as SentEval keeps them")
_SST2 = _transfer("sst2", "Stanford Sentiment Treebank, binary (Socher et al. 2013)",
                  {"train": 67349, "dev": 872, "test": 1821},
                  ("https://raw.githubusercontent.com/PrincetonML/SIF/master/data/sentiment-train",), 2,
                  ("negative", "positive"), ("train", "dev", "test"))
_SST5 = _transfer("sst5", "Stanford Sentiment Treebank, fine-grained (5 classes)",
                  {"train": 8544, "dev": 1101, "test": 2210},
                  ("https://raw.githubusercontent.com/AcademiaSinicaNLPLab/sentiment_dataset/master/data/stsa.fine.train",),
                  5, ("very negative", "negative", "neutral", "positive", "very positive"), ("train", "dev", "test"))
_TREC = _transfer("trec", "TREC question types (Li & Roth 2002)", {"train": 5452, "test": 500},
                  ("http://cogcomp.cs.illinois.edu/Data/QA/QC/train_5500.label",
                   "http://cogcomp.cs.illinois.edu/Data/QA/QC/TREC_10.label"), 6,
                  ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"), ("train", "test"),
                  notes="latin-1 encoded")
_MRPC = _transfer("mrpc", "Microsoft Research Paraphrase Corpus (Dolan et al. 2004)", {"train": 4076, "test": 1725},
                  (f"{_FBAI}/msr_paraphrase_train.txt", f"{_FBAI}/msr_paraphrase_test.txt"), 2,
                  ("not paraphrase", "paraphrase"), ("train", "test"), notes="one header line per file",
                  license="Microsoft Research Paraphrase Corpus licence (research use)")

# --------------------------------------------------------------------------------------------- NLI, corpora
_KORNLI = _kakao("kornli-xnli", "nli", "KorNLI: XNLI dev/test translated to Korean (Ham et al. 2020)", "KorNLI",
                 ("xnli.dev.ko.tsv", "xnli.test.ko.tsv"), {"dev": 2490, "test": 5010}, ("dev", "test"),
                 "header line; columns sentence1 sentence2 gold_label")

WIKI1M_LINES = 1_000_000
WIKI1M_PREFIX_LINES = 11_914
WIKI1M_FIRST_LINE = "YMCA in South Australia"
_WIKI1M = DatasetSpec(
    name="wiki1m",
    kind="corpus",
    description="SimCSE's unsupervised training corpus: 10^6 English Wikipedia sentences",
    unit="lines",
    expected=MappingProxyType({"lines": WIKI1M_LINES}),
    origin=(f"{_SIMCSE_HF}/wiki1m_for_simcse.txt",),
    license="CC BY-SA (Wikipedia text)",
    layouts=(
        Layout(
            "full",
            ("wiki1m/wiki1m_for_simcse.txt", "wiki1m_for_simcse.txt", "data/wiki1m_for_simcse.txt"),
            sources=(Source("SimCSE's wiki1m_for_simcse.txt (checksum not published: 1,000,000 lines verified)",
                            (RemoteFile(f"{_SIMCSE_HF}/wiki1m_for_simcse.txt"),)),),
        ),
        Layout(
            "prefix",
            ("wiki1m_prefix/wiki1m_for_simcse.first11914.txt",),
            partial=True,
            expected=MappingProxyType({"lines": WIKI1M_PREFIX_LINES}),
            note=f"only the first {WIKI1M_PREFIX_LINES:,} of {WIKI1M_LINES:,} lines",
        ),
    ),
    notes="the prefix copy is used only when the full file can be neither found nor downloaded",
)

# --------------------------------------------------------------------------------------------- captions
_M30K_SPLITS = (("train", "train"), ("val", "val"), ("test_2016", "test"))
_M30K_FILES = tuple(
    f for sp, _ in _M30K_SPLITS for f in (f"image_splits/{sp}_images.txt", *(f"raw/{sp}.{k}.en.gz" for k in range(1, 6)))
)
_FLICKR30K = DatasetSpec(
    name="flickr30k-captions",
    kind="captions",
    description="Flickr30k English captions (5 per image), Karpathy split; text only",
    unit="captions",
    expected=MappingProxyType({"train": 145_000, "val": 5_070, "test": 5_000}),
    origin=(f"{_MULTI30K_GH}/raw/", f"{_MULTI30K_GH}/image_splits/", "https://shannon.cs.illinois.edu/DenotationGraph/"),
    license="Flickr30k terms (non-commercial research); images under Flickr terms",
    layouts=(
        Layout("tsv", ("flickr30k_captions_karpathy/flickr30k_captions.tsv.gz", "flickr30k_captions.tsv.gz"),
               note="image, split, caption_no, caption (built from the Multi30k files)"),
        Layout(
            "multi30k",
            ("flickr30k_multi30k", "multi30k/data/task2", "dataset/data/task2"),
            required=_M30K_FILES,
            sources=(Source(
                "multi30k/dataset task2 files on GitHub (pinned commit, sha256 verified)",
                tuple(RemoteFile(f"{_MULTI30K_GH}/{f}", dest=f, sha256=SHA256[f"multi30k/{f}"]) for f in _M30K_FILES),
            ),),
        ),
    ),
    splits=("train", "val", "test"),
    notes="Multi30k task2 {train,val,test_2016}.{1..5}.en = the original Flickr30k descriptions",
)

_FLICKR8K_FILES = ("Flickr8k.token.txt", "Flickr_8k.trainImages.txt", "Flickr_8k.devImages.txt",
                   "Flickr_8k.testImages.txt")
FLICKR8K_BOGUS = "2258277193_586949ec62.jpg.1"
_FLICKR8K = DatasetSpec(
    name="flickr8k",
    kind="captions",
    description="Flickr8k captions (Hodosh et al. 2013), official 6000/1000/1000 image split; text only",
    unit="captions",
    expected=MappingProxyType({"train": 30_000, "dev": 5_000, "test": 5_000, "unsplit": 455, "skipped": 5}),
    origin=("https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip",
            "https://hockenmaier.cs.illinois.edu/8k-pictures.html"),
    license="Flickr8k research-use terms (cite Hodosh et al., JAIR 2013)",
    layouts=(
        Layout(
            "default",
            ("flickr8k_text", "Flickr8k_text", "flickr8k"),
            required=_FLICKR8K_FILES,
            sources=(Source("Flickr8k_text.zip (jbrownlee/Datasets release; checksum not published: counts verified)",
                            (RemoteFile("https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/"
                                        "Flickr8k_text.zip", unpack="zip"),)),),
        ),
    ),
    splits=("train", "dev", "test"),
    notes=f"the token file's bogus name {FLICKR8K_BOGUS!r} (no such image) is skipped and counted; "
    "91 real images are in no split list ('unsplit', split None)",
)

_COCO_ZIP = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
_COCO = DatasetSpec(
    name="coco-captions",
    kind="captions",
    description="MS-COCO 2017 caption annotations (official JSON); text only",
    unit="captions",
    expected=MappingProxyType({"val2017": 25_014}),
    origin=(_COCO_ZIP,),
    license="annotations CC BY 4.0; images under their Flickr licences",
    layouts=(
        Layout(
            "default",
            ("coco_val2017_captions", "coco/annotations", "annotations"),
            required=("captions_val2017.json",),
            sources=(Source("annotations_trainval2017.zip from cocodataset.org (checksum not published: counts verified)",
                            (RemoteFile(_COCO_ZIP, unpack="zip", keep=("captions_*2017.json",)),)),),
        ),
    ),
    splits=("train2017", "val2017"),
    notes="val2017: 5,000 images / 25,014 captions; captions_train2017.json is read and counted when present "
    "(its count is not verified against a number here)",
)

# --------------------------------------------------------------------------------------------- registry
REGISTRY: Mapping[str, DatasetSpec] = MappingProxyType({
    spec.name: spec
    for spec in (
        *(_sts_year(n) for n in _STS_SUBSETS),
        _STSB, _SICKR,
        _MR, _CR, _SUBJ, _MPQA, _SST2, _SST5, _TREC, _MRPC,
        _KORSTS, _KORNLI, _WIKI1M, _FLICKR30K, _FLICKR8K, _COCO,
    )
})


def get_spec(name: str) -> DatasetSpec:
    key = name.strip().lower()
    if key not in REGISTRY:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[key]


# --------------------------------------------------------------------------------------------- roots
def cache_dir() -> Path:
    """capcse's user cache: ``CAPCSE_CACHE``, else ``$XDG_CACHE_HOME/capcse``, else ``~/.cache/capcse``."""
    env = os.environ.get("CAPCSE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "capcse"


def data_cache_dir() -> Path:
    """Where downloaded data sets are installed: ``<cache_dir()>/data``."""
    return cache_dir() / "data"


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The data roots searched, in order: ``data_dir``, each folder of ``CAPCSE_DATA`` (``os.pathsep``
    separated), the data cache. Roots that do not exist are listed too (they appear in error messages)."""
    roots: list[Path] = []
    if data_dir is not None and str(data_dir) != "":
        roots.append(Path(data_dir).expanduser())
    for part in os.environ.get("CAPCSE_DATA", "").split(os.pathsep):
        if part.strip():
            roots.append(Path(part.strip()).expanduser())
    roots.append(data_cache_dir())
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique
