"""Batch samplers for supervised contrastive metric learning (CLIPPINGS).

* :class:`MPerClassBatchSampler`: every batch holds ``batch_size / m`` distinct classes with ``m``
  records each, so that every anchor has ``m - 1`` positives under SupCon. Each epoch walks the
  classes in a fresh seeded order; within a class, records are drawn without replacement until the
  class is used up, then it refills (a class smaller than ``m`` is padded by drawing again from it).
* :class:`HardNegativeBatchSampler`: batches made of *neighbourhoods*: an anchor class and its ``k - 1``
  nearest classes in the current embedding space, ``m`` records each, so that each batch holds
  look-alike clusters (hard negatives). The neighbour table comes from :func:`nearest_classes`, an
  exact inner-product search (faiss) over one embedding per class, and is meant to be refreshed every
  epoch with the current model (:meth:`HardNegativeBatchSampler.refresh`).

Both are ``torch.utils.data.Sampler`` objects yielding lists of indices (pass as ``batch_sampler=``).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["MPerClassBatchSampler", "HardNegativeBatchSampler", "nearest_classes", "class_embeddings"]


def _groups(labels: Sequence, min_class_size: int) -> tuple[list, list[np.ndarray]]:
    labels = np.asarray(labels)
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    keep = [k for k, m in enumerate(members) if len(m) >= min_class_size]
    return [classes[k] for k in keep], [members[k] for k in keep]


class _ClassPools:
    """Per-class shuffled pools drawn without replacement, refilled when empty."""

    def __init__(self, members: list[np.ndarray], rng: np.random.Generator):
        self.members, self.rng = members, rng
        self.pools = [rng.permutation(m).tolist() for m in members]

    def take(self, c: int, m: int) -> list[int]:
        out: list[int] = []
        while len(out) < m:
            if not self.pools[c]:
                self.pools[c] = self.rng.permutation(self.members[c]).tolist()
            need = m - len(out)
            fresh = [i for i in self.pools[c] if i not in out][:need]
            if not fresh:  # class smaller than m: pad with repeats
                out.append(int(self.rng.choice(self.members[c])))
                continue
            for i in fresh:
                self.pools[c].remove(i)
            out.extend(int(i) for i in fresh)
        return out


class MPerClassBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size // m`` classes x ``m`` records (``m`` must divide ``batch_size``).

    ``min_class_size`` (default 2) drops classes too small to give a positive pair (they would only
    be padded with copies of one record). ``len(sampler)`` is the number of batches per epoch:
    ``n_classes // (batch_size // m)``; call :meth:`set_epoch` (or just iterate again) for a new order.
    """

    def __init__(self, labels: Sequence, m: int, batch_size: int, *, seed: int = 0, min_class_size: int = 2):
        if m < 1 or batch_size % m:
            raise ValueError(f"m ({m}) must be >= 1 and divide batch_size ({batch_size})")
        self.m, self.batch_size, self.seed = int(m), int(batch_size), int(seed)
        self.classes, self.members = _groups(labels, min_class_size)
        self.per_batch = self.batch_size // self.m
        if len(self.classes) < self.per_batch:
            raise ValueError(f"{len(self.classes)} classes (of >= {min_class_size} records) cannot fill a batch of {self.per_batch} classes")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.classes) // self.per_batch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        pools = _ClassPools(self.members, rng)
        order = rng.permutation(len(self.classes))
        for b in range(len(self)):
            batch: list[int] = []
            for c in order[b * self.per_batch : (b + 1) * self.per_batch]:
                batch.extend(pools.take(int(c), self.m))
            yield batch


def class_embeddings(embeddings: np.ndarray, labels: Sequence, classes: Sequence) -> np.ndarray:
    """One vector per class: the normalised mean of its records' (normalised) embeddings."""
    X = np.asarray(embeddings, dtype=np.float32)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    labels = np.asarray(labels)
    index = {c: k for k, c in enumerate(classes)}
    rows = np.array([index.get(l, -1) for l in labels])
    out = np.zeros((len(classes), X.shape[1]), dtype=np.float32)
    ok = rows >= 0
    np.add.at(out, rows[ok], X[ok])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def nearest_classes(class_vectors: np.ndarray, k: int) -> np.ndarray:
    """For every class, itself then its ``k - 1`` most similar other classes (exact inner product)."""
    import faiss

    V = np.ascontiguousarray(class_vectors, dtype=np.float32)
    k = min(k, len(V))
    index = faiss.IndexFlatIP(V.shape[1])
    index.add(V)
    _, nbrs = index.search(V, k)
    out = np.empty_like(nbrs)
    for c, row in enumerate(nbrs):  # put the class itself first (ties may order it elsewhere)
        others = [int(x) for x in row if x != c][: k - 1]
        out[c] = [c] + others
    return out.astype(np.int64)


class HardNegativeBatchSampler(Sampler[list[int]]):
    """Batches of neighbourhoods: ``batch_size // (k * m)`` anchor classes per batch, each with its
    ``k - 1`` nearest classes, ``m`` records per class (``k * m`` must divide ``batch_size``).

    Until :meth:`refresh` is called the neighbourhoods are random. A class appearing in two
    neighbourhoods of one batch is included once (so a batch may be a little smaller than
    ``batch_size``). Every class is an anchor once per epoch.
    """

    def __init__(self, labels: Sequence, m: int, k: int, batch_size: int, *, seed: int = 0, min_class_size: int = 2):
        if m < 1 or k < 1 or batch_size % (k * m):
            raise ValueError(f"k*m ({k}*{m}) must divide batch_size ({batch_size})")
        self.labels = np.asarray(labels)
        self.m, self.k, self.batch_size, self.seed = int(m), int(k), int(batch_size), int(seed)
        self.classes, self.members = _groups(labels, min_class_size)
        self.anchors_per_batch = self.batch_size // (self.k * self.m)
        if len(self.classes) < max(self.k, self.anchors_per_batch):
            raise ValueError(f"{len(self.classes)} classes are too few for k={k} and {self.anchors_per_batch} anchors per batch")
        self.epoch = 0
        rng = np.random.default_rng([self.seed, 10**6])
        self.neighbours = np.stack(
            [np.concatenate([[c], rng.choice(np.delete(np.arange(len(self.classes)), c), self.k - 1, replace=False)]) for c in range(len(self.classes))]
        )

    def refresh(self, record_embeddings: np.ndarray) -> None:
        """Re-mine the neighbourhoods from embeddings of every record (rows aligned with ``labels``)."""
        vectors = class_embeddings(record_embeddings, self.labels, self.classes)
        self.neighbours = nearest_classes(vectors, self.k)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.classes) // self.anchors_per_batch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        pools = _ClassPools(self.members, rng)
        order = rng.permutation(len(self.classes))
        for b in range(len(self)):
            chosen: list[int] = []
            for a in order[b * self.anchors_per_batch : (b + 1) * self.anchors_per_batch]:
                chosen.extend(int(c) for c in self.neighbours[a] if int(c) not in chosen)
            batch: list[int] = []
            for c in chosen:
                batch.extend(pools.take(c, self.m))
            yield batch
