"""Fixtures for the training tests: tiny BERT SentenceTransformers in their SimCSE training form."""

from __future__ import annotations

import pytest

SENTENCES = [
    "a man is playing a guitar .", "a woman is slicing an onion .", "two dogs run through the snow .",
    "the cat sleeps on the warm windowsill .", "children are playing football in the park .",
    "a chef cooks pasta in a big kitchen .", "the train arrives at the station late .",
    "an old man reads a newspaper .", "birds fly over the quiet lake at dawn .",
    "a girl rides a red bicycle down the hill .", "the stock market fell sharply today .",
    "he plays the piano every evening .",
]


def build_tiny(path, pooler: str = "cls", mlp_init: str = "fresh", seed: int = 0, device: str = "cpu"):
    from capcse.models.encoder import load_sentence_transformer
    from capcse.models.heads import apply_training_form

    model = load_sentence_transformer(str(path), device=device, max_length=32)
    apply_training_form(model, pooler, mlp_init, seed=seed)
    return model


@pytest.fixture
def tiny_st(tiny_bert_path):
    """A factory of fresh tiny training-form models (same initial weights every call)."""
    return lambda **kw: build_tiny(tiny_bert_path, **kw)


@pytest.fixture
def featurize():
    """``featurize(model, texts)``: the tokenised features the Trainer's collator hands to a loss."""
    return lambda model, texts: dict(model.preprocess(list(texts)))


@pytest.fixture(scope="session")
def sentences():
    return list(SENTENCES)
