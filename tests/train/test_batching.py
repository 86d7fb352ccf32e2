"""LengthGroupedBatchSampler: a permutation per epoch, length-homogeneous batches, seeded by seed+epoch."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from capcse.train.batching import LengthGroupedBatchSampler, text_lengths


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 200, size=1003)]
    return Dataset.from_dict({"text": texts})


def batches(ds, batch_size=16, drop_last=False, seed=0, epoch=0):
    sampler = LengthGroupedBatchSampler(ds, batch_size=batch_size, drop_last=drop_last, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler), sampler


def test_every_index_exactly_once_per_epoch(corpus):
    for epoch in range(3):
        got, sampler = batches(corpus, epoch=epoch)
        flat = [i for b in got for i in b]
        assert sorted(flat) == list(range(len(corpus)))
        assert len(got) == len(sampler) == 63
        assert sum(len(b) < 16 for b in got) == 1


def test_drop_last_keeps_only_full_batches(corpus):
    got, sampler = batches(corpus, drop_last=True)
    assert len(got) == len(sampler) == len(corpus) // 16
    assert all(len(b) == 16 for b in got)
    flat = [i for b in got for i in b]
    assert len(set(flat)) == len(flat) == 16 * 62


def padding_waste(ds, got):
    lengths = np.asarray([len(t) for t in ds["text"]])
    padded = sum(len(b) * lengths[b].max() for b in got)
    return 1 - lengths.sum() / padded


def test_batches_are_length_homogeneous(corpus):
    got, _ = batches(corpus)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(corpus))
    random_batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    assert padding_waste(corpus, got) < 0.1  # ~7 %: batches sorted within mega-batches of 50
    assert padding_waste(corpus, random_batches) > 0.3


def test_deterministic_by_seed_and_epoch(corpus):
    a, _ = batches(corpus, seed=5, epoch=2)
    b, _ = batches(corpus, seed=5, epoch=2)
    assert a == b
    assert batches(corpus, seed=5, epoch=3)[0] != a
    assert batches(corpus, seed=6, epoch=2)[0] != a


def test_text_lengths_takes_the_longest_column_and_follows_selections():
    ds = Dataset.from_dict({"a": ["xx", "x", "xxxxx"], "b": ["x", "xxxx", "x"], "n": [1, 2, 3]})
    assert text_lengths(ds).tolist() == [2, 4, 5]
    assert text_lengths(ds.select([2, 0])).tolist() == [5, 2]
    assert text_lengths(ds.filter(lambda r: r["n"] != 2)).tolist() == [2, 5]


def test_the_trainer_uses_it_when_the_recipe_asks(tiny_st, tmp_path, corpus):
    from sentence_transformers import SentenceTransformerTrainer

    from capcse.losses.simcse import SimCSELoss
    from capcse.train.objective import SimCSEObjective
    from capcse.train.recipe import recipe_from_dict
    from capcse.train.trainer import training_arguments

    recipe = recipe_from_dict({"train": {"output_dir": str(tmp_path), "batch_size": 16, "group_by_length": True,
                                         "report_to": ["none"]}, "eval": {"during": "none"}})
    model = tiny_st()
    trainer = SentenceTransformerTrainer(model=model, args=training_arguments(recipe, evaluate=False),
                                         train_dataset=corpus, loss=SimCSEObjective(model, SimCSELoss()))
    loader = trainer.get_train_dataloader()
    sampler = loader.batch_sampler
    sampler = getattr(sampler, "batch_sampler", sampler)
    assert isinstance(sampler, LengthGroupedBatchSampler)
    assert padding_waste(corpus, list(sampler)) < 0.1


def test_token_lengths_are_the_padded_widths_and_group_tighter_than_characters(minilm_path):
    """With the tokenizer, lengths are token counts truncated at max_length (what padding is made of):
    long words and punctuation make characters a poor proxy, token grouping removes that padding."""
    from transformers import AutoTokenizer

    from capcse.train.batching import token_lengths

    tok = AutoTokenizer.from_pretrained(minilm_path)
    rng = np.random.default_rng(0)
    words = ["a", "dog", "runs", "!", "?", ",", "extraordinarily", "photosynthesis", "x", "internationalisation"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 25)))) for _ in range(500)]
    ds = Dataset.from_dict({"text": texts, "other": texts[::-1]})
    got = token_lengths(ds, tok, max_length=16, chunk=64)
    want = [max(min(len(tok(a)["input_ids"]), 16), min(len(tok(b)["input_ids"]), 16))
            for a, b in zip(texts, texts[::-1])]
    assert got.tolist() == want and got.max() == 16

    def waste(sampler):
        lens = np.asarray(want)
        bs = list(sampler)
        return 1 - lens.sum() / sum(len(b) * lens[b].max() for b in bs)

    by_tokens = LengthGroupedBatchSampler(ds, batch_size=8, drop_last=False, seed=0, tokenizer=tok, max_length=16)
    by_chars = LengthGroupedBatchSampler(ds, batch_size=8, drop_last=False, seed=0)
    assert sorted(i for b in by_tokens for i in b) == list(range(500))
    assert waste(by_tokens) < 0.05 and waste(by_tokens) < waste(by_chars)
