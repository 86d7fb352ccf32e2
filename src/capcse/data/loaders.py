"""A named data set, found and read: the readers' entry points that start from a name.

Each loader asks :func:`~capcse.data.resolve.locate` where the data set is (downloading it when allowed) and
reads it with its reader: :func:`load_sts` (:mod:`capcse.data.sts`), :func:`load_transfer`
(:mod:`capcse.data.transfer`), :func:`load_caption_table` (:mod:`capcse.data.corpora`). The readers themselves
take paths and never look anything up, so that the downloader can verify a copy with them.
"""

from __future__ import annotations

from pathlib import Path

from capcse.data.corpora import RowTable, read_caption_table
from capcse.data.registry import REGISTRY, DatasetSpec, get_spec
from capcse.data.resolve import locate
from capcse.data.sts import STSData, check_complete, read_sts_split
from capcse.data.transfer import TransferData, read_transfer
from capcse.errors import ConfigError


def load_sts(name: str, split: str = "test", *, data_dir=None, variant: str = "senteval",
             download: bool = True) -> dict[str, STSData]:
    """Load an STS data set: an ordered ``{subset name: STSData}``.

    ``name``: sts12 sts13 sts14 sts15 sts16 stsb sickr korsts. ``split``: "test" for sts12-16;
    "train"/"dev"/"test" for stsb, sickr (train = SICK_train, dev = SICK_trial, test = SICK_test_annotated)
    and korsts. STS12-16 give SentEval's subsets in SentEval's order; stsb/sickr/korsts give one entry keyed
    by the data set name. ``variant``: "senteval" or "raw" (see :mod:`capcse.data.sts`); SICK and KorSTS have
    a single variant and accept both.
    """
    spec = get_spec(name)
    if spec.kind != "sts":
        raise ConfigError(f"{name!r} is not an STS data set (it is {spec.kind}); STS sets: "
                          + ", ".join(n for n, s in _sts_specs().items()))
    if variant not in ("senteval", "raw"):
        raise ConfigError(f"variant must be 'senteval' or 'raw', not {variant!r}")
    if split not in spec.splits:
        raise ConfigError(f"{spec.name} has splits {', '.join(spec.splits)}; not {split!r}")
    loc = locate(name, data_dir=data_dir, download=download, variant=variant)
    data = read_sts_split(spec, loc.layout, loc.path, split)
    check_complete(spec, loc.layout, split, data)
    return data


def _sts_specs() -> dict[str, DatasetSpec]:
    return {n: s for n, s in REGISTRY.items() if s.kind == "sts"}


def load_transfer(name: str, *, data_dir=None, download: bool = True) -> TransferData:
    """Load a transfer task: mr cr subj mpqa sst2 sst5 trec mrpc.

    Splits: ``"all"`` for mr/cr/subj/mpqa (SentEval runs k-fold CV on them), ``"train"/"dev"/"test"`` for
    sst2/sst5, ``"train"/"test"`` for trec and mrpc. Labels are int64 arrays with SentEval's codes.
    """
    loc = locate(name, data_dir=data_dir, download=download)
    return read_transfer(name, loc.path)


def load_caption_table(name: str, *, data_dir=None, download: bool = True, split: str | None = None) -> RowTable:
    """Caption rows (image, caption, split) of a registered caption set or of a path.

    ``name``: ``flickr30k-captions`` (Karpathy split: train/val/test), ``flickr8k`` (train/dev/test, split None
    for the 91 images in no split list; the bogus ``2258277193_586949ec62.jpg.1`` entry is skipped and
    counted), ``coco-captions`` (split train2017/val2017), or a path to any layout
    :func:`read_caption_table` knows. ``split`` keeps only that split's rows.
    """
    if name.strip().lower() not in REGISTRY:
        if not Path(name).exists():
            raise ConfigError(f"{name!r} is neither a caption data set ({', '.join(_caption_sets())}) nor a path")
        table = read_caption_table(name)
    else:
        spec = get_spec(name)
        if spec.kind != "captions":
            raise ConfigError(f"{name!r} is not a caption data set")
        table = read_caption_table(locate(name, data_dir=data_dir, download=download).path)
        table.name = spec.name
    if split is not None:
        kept = [r for r in table if r.split == split]
        if not kept:
            raise ConfigError(f"{table.name}: no rows in split {split!r}; splits: "
                              f"{sorted({str(r.split) for r in table})}")
        table = RowTable(kept, name=table.name, source=table.source, skipped=table.skipped)
    return table


def _caption_sets() -> list[str]:
    return [n for n, s in REGISTRY.items() if s.kind == "captions"]
