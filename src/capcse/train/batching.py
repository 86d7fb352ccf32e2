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


def text_lengths(dataset, columns: list[str] | None = None) -> np.ndarray:
    """Characters per example (the longest of its text columns), computed by pyarrow without a Python loop.
    The concatenated SimCSE batch pads every column to the longest one, so the maximum is what counts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
    if getattr(dataset, "_indices", None) is not None:
        table = table.take(dataset._indices.column(0))
    cols = columns or [c for c in dataset.column_names
                       if pa.types.is_string(table.column(c).type) or pa.types.is_large_string(table.column(c).type)]
    lengths = None
    for col in cols:
        n = pc.utf8_length(pc.fill_null(table.column(col), "")).to_numpy(zero_copy_only=False)
        lengths = n if lengths is None else np.maximum(lengths, n)
    return lengths.astype(np.int64)


class LengthGroupedBatchSampler(DefaultBatchSampler):
    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0):
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
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
