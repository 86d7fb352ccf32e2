"""Fixtures of the evaluation tests: a deterministic bag-of-words encoder and in-memory STS data."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest


def bow_encode(sentences: list[str], dim: int = 64) -> np.ndarray:
    """Hashed, weighted bag of lower-cased words: a real (if weak) sentence encoder needing no model.
    Word weights are irregular so that distinct pairs practically never tie in similarity."""
    out = np.zeros((len(sentences), dim), dtype=np.float32)
    for i, s in enumerate(sentences):
        for w in s.lower().split():
            h = zlib.crc32(w.encode())
            out[i, h % dim] += 1.0 + (h % 9973) / 9973.0
    return out


@dataclass
class Pairs:
    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    source: str = "memory"


@pytest.fixture
def pairs_type():
    return Pairs


@pytest.fixture
def bow():
    return bow_encode


@pytest.fixture
def toy_sts():
    """Two STS 'subsets' of random sentences drawn from a small vocabulary, gold = word overlap + noise."""
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(30)]

    def subset(name, n):
        s1, s2, gold = [], [], []
        for _ in range(n):
            a = list(rng.choice(vocab, size=6))
            b = a[: rng.integers(0, 7)] + list(rng.choice(vocab, size=3))
            s1.append(" ".join(a))
            s2.append(" ".join(b))
            gold.append(len(set(a) & set(b)) + rng.normal(0, 0.5))
        return Pairs(name, s1, s2, np.array(gold))

    return {"A": subset("A", 40), "B": subset("B", 25)}
