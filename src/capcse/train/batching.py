"""Length-grouped batches for the sentence-transformers Trainer.

Random batches of short texts waste much of their compute on padding (64 random Flickr30k captions:
~49 % of the tokens are padding). :class:`LengthGroupedBatchSampler` orders the data with transformers'
own ``get_length_grouped_indices`` (random permutation, mega-batches of 50 batches sorted by length) —
the algorithm behind the Trainer's ``group_by_length`` switch, which the sentence-transformers Trainer
does not expose — cuts it into batches, and shuffles the batch order. Batches keep random content
(any sentence can meet any other of similar length), so in-batch negatives stay diverse.
"""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler
from transformers.trainer_pt_utils import get_length_grouped_indices


def arrow_table(dataset):
    """The dataset's rows as a pyarrow table, in the dataset's order (its indices mapping applied)."""
    table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
    if getattr(dataset, "_indices", None) is not None:
        table = table.take(dataset._indices.column(0))
    return table


def string_columns(dataset, table, columns: list[str] | None = None) -> list[str]:
    """``columns``, or every string column of the dataset."""
    import pyarrow as pa

    return columns or [c for c in dataset.column_names
                       if pa.types.is_string(table.column(c).type) or pa.types.is_large_string(table.column(c).type)]


def text_lengths(dataset, columns: list[str] | None = None) -> np.ndarray:
    """Characters per example (the longest of its text columns), computed by pyarrow without a Python loop.
    The concatenated SimCSE batch pads every column to the longest one, so the maximum is what counts."""
    import pyarrow.compute as pc

    table = arrow_table(dataset)
    lengths = None
    for col in string_columns(dataset, table, columns):
        n = pc.utf8_length(pc.fill_null(table.column(col), "")).to_numpy(zero_copy_only=False)
        lengths = n if lengths is None else np.maximum(lengths, n)
    return lengths.astype(np.int64)


def token_lengths(dataset, tokenizer, max_length: int | None = None, columns: list[str] | None = None,
                  chunk: int = 10_000) -> np.ndarray:
    """Tokens per example (with special tokens, truncated at ``max_length``; the longest of its text
    columns): the padded width the example will need. Tokenised in chunks (a 3M-line corpus is never
    held as Python token lists), by the fast tokenizer's parallel batch encoder."""
    table = arrow_table(dataset)
    lengths = np.zeros(table.num_rows, dtype=np.int64)
    for col in string_columns(dataset, table, columns):
        column = table.column(col)
        for start in range(0, table.num_rows, chunk):
            texts = [t or "" for t in column.slice(start, chunk).to_pylist()]
            enc = tokenizer(texts, truncation=max_length is not None, max_length=max_length, return_length=True,
                            return_attention_mask=False, return_token_type_ids=False)
            n = np.asarray(enc["length"], dtype=np.int64)
            lengths[start:start + len(n)] = np.maximum(lengths[start:start + len(n)], n)
    return lengths


class LengthGroupedBatchSampler(DefaultBatchSampler):
    """Length-grouped batches (see the module docstring). ``tokenizer`` given (what ``capcse train``
    does): lengths are token counts truncated at ``max_length`` — the padded width each batch will
    have, so sorted batches carry almost no padding; without it, character counts (cheaper, coarser:
    ~19 % padding left on Flickr30k captions against < 1 % with token counts)."""

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0, tokenizer=None, max_length: int | None = None):
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if tokenizer is not None:
            self.lengths = token_lengths(dataset, tokenizer, max_length).tolist()
        else:
            self.lengths = text_lengths(dataset).tolist()

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        order = get_length_grouped_indices(self.lengths, self.batch_size, generator=generator)
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[b]

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
