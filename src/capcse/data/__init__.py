"""capcse.data: the data registry, resolution/download, and the text loaders (STS, transfer, NLI, corpora, captions).

See docs/data.md for where every data set comes from and how capcse finds it.
"""

from capcse.data.corpora import (CaptionRow, NLIPair, RowTable, count_lines, load_nli_pairs, read_caption_table,
                                 read_text_corpus)
from capcse.data.loaders import load_caption_table, load_sts, load_transfer
from capcse.data.registry import (REGISTRY, DatasetSpec, Layout, RemoteFile, Source, cache_dir, data_cache_dir,
                                  data_roots, get_spec)
from capcse.data.resolve import Located, find_local, is_offline, list_datasets, locate, resolve_dataset
from capcse.data.sts import STSData, read_sts_file, read_sts_pair_files
from capcse.data.transfer import TransferData

__all__ = [
    "REGISTRY", "DatasetSpec", "Layout", "Located", "RemoteFile", "Source",
    "cache_dir", "data_cache_dir", "data_roots", "find_local", "get_spec", "is_offline", "list_datasets",
    "locate", "resolve_dataset",
    "STSData", "load_sts", "read_sts_file", "read_sts_pair_files",
    "TransferData", "load_transfer",
    "CaptionRow", "NLIPair", "RowTable", "count_lines", "load_caption_table", "load_nli_pairs",
    "read_caption_table", "read_text_corpus",
]
