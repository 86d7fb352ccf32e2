"""MCSE's interleaving of text batches and image–caption batches: :func:`mcse_schedule`, :class:`MixedModalityBatchSampler`."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

from capcse.train.multimodal.data import label_column
from capcse.train.objective import distributed_world


def mcse_schedule(n_text_batches: int, n_pair_batches: int) -> list[bool]:
    """MCSE's ``train_mix.py`` interleaving: ``True`` (pair batch) at steps ``s % (T // P) == 0``
    of the ``T + P`` steps of an epoch (``T // P`` floored at 1)."""
    total = n_text_batches + n_pair_batches
    if n_pair_batches == 0:
        return [False] * total
    if n_text_batches == 0:
        return [True] * total
    stride = max(1, n_text_batches // n_pair_batches)
    return [s % stride == 0 for s in range(total)]


class MixedModalityBatchSampler(DefaultBatchSampler):
    """Homogeneous batches (all text rows or all image-caption rows) in MCSE's interleaved order.

    Rows are told apart by the dataset's ``label`` column (see :func:`build_mixed_dataset`). Each
    stream is endless and continues across epochs, as MCSE's ``inf_train_gen`` generators do (they
    are created once, before the epoch loop): pass ``k`` over a stream is a fresh shuffle seeded by
    ``(seed, stream, k)``, and epoch ``e`` resumes each stream where epoch ``e - 1`` left it (the
    schedule fixes how many batches of each kind an epoch takes, so the position is computed, not
    stored: a resumed run gets the same batches).

    Multi-process (``torchrun`` / ``accelerate launch``): accelerate deals the sampler's batches out
    round-robin (process ``r`` takes batches ``r, r + W, ...``), and the objective gathers the ``W``
    batches of a step into one, which must therefore be of one kind. With ``W`` processes the schedule
    is made over global steps (``T // W`` text steps, ``P // W`` pair steps) and every slot yields
    ``W`` consecutive batches of its kind. One process: exactly MCSE's schedule."""

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0, world_size: int | None = None):
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        labels = label_column(dataset)
        self.text_rows = np.flatnonzero(labels >= 0)
        self.pair_rows = np.flatnonzero(labels < 0)
        self.world_size = max(1, int(world_size if world_size is not None else distributed_world()[1]))

    def _n_batches(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _stream(self, rows: np.ndarray, stream: int, start: int) -> Iterator[list[int]]:
        """The endless stream's batches from batch ``start`` on (pass ``k`` shuffled by ``(seed, stream, k)``)."""
        n = self._n_batches(len(rows))
        if n == 0:
            return
        k, b = divmod(start, n)
        while True:
            generator = torch.Generator()
            generator.manual_seed(int(np.random.SeedSequence([int(self.seed), stream, k]).generate_state(1)[0]))
            order = rows[torch.randperm(len(rows), generator=generator).numpy()]
            for i in range(b, n):
                yield order[i * self.batch_size: (i + 1) * self.batch_size].tolist()
            k, b = k + 1, 0

    def _slots(self) -> list[bool]:
        """The schedule over global steps (one slot = ``world_size`` batches of one kind)."""
        w = self.world_size
        t, p = self._n_batches(len(self.text_rows)), self._n_batches(len(self.pair_rows))
        return mcse_schedule(max(1, t // w) if t else 0, max(1, p // w) if p else 0)

    def __iter__(self) -> Iterator[list[int]]:
        slots, epoch = self._slots(), int(getattr(self, "epoch", 0))
        per_epoch_pairs = sum(slots) * self.world_size          # batches each stream gives per epoch
        per_epoch_texts = (len(slots) - sum(slots)) * self.world_size
        texts = self._stream(self.text_rows, 0, epoch * per_epoch_texts)
        pairs = self._stream(self.pair_rows, 1, epoch * per_epoch_pairs)
        for is_pair in slots:
            for _ in range(self.world_size):
                yield next(pairs) if is_pair else next(texts)

    def __len__(self) -> int:
        return len(self._slots()) * self.world_size
