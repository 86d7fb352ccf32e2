"""benchmarks/train_throughput.py: the FLOP formula against torch's own FLOP counter, and one worker
step per side on a tiny BERT (what each side runs: forwards per step, sequences, autocast)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def tt(load_benchmark):
    return load_benchmark("train_throughput")


def test_forward_flops_by_hand(tt):
    # L=2, d=4, f=8, s=3: linear 2*3*(4*16 + 2*4*8) = 768, attention 4*9*4 = 144 -> 2 * 912
    assert tt.forward_flops(3, layers=2, hidden=4, ffn=8) == 1824


def test_forward_flops_equals_torch_flop_counter(tt, tiny_bert_path):
    """The formula counts exactly the matmul FLOPs torch's FlopCounterMode sees in a BERT encoder
    forward (pooler off: it is not part of the formula), for a padded batch."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BertModel

    model = BertModel.from_pretrained(str(tiny_bert_path), add_pooling_layer=False, attn_implementation="eager").eval()
    cfg = model.config
    rows, width = 3, 11
    ids = torch.randint(1000, 2000, (rows, width))
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[1, 7:] = 0
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=mask)
    expected = rows * tt.forward_flops(width, cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size)
    assert counter.get_total_flops() == expected


def worker_args(variant: str, model: Path, data_dir: Path) -> argparse.Namespace:
    return argparse.Namespace(worker=variant, model_path=str(model), data_dir=str(data_dir), steps=2, warmup=1,
                              threads=1, no_sts=True, sts_limit=None)


def test_worker_anchor_vs_capcse(tt, tiny_bert_path, data_dir):
    """Stock recipe: 2 forwards of 64 per step (one per column); capcse: 1 forward of 128 (the
    concatenated [2N] batch); both see 64 captions x 2 views per step, the bf16 run under autocast."""
    anchor = tt.worker(worker_args("anchor", tiny_bert_path, data_dir))
    ours = tt.worker(worker_args("capcse-bf16-grouped", tiny_bert_path, data_dir))
    assert anchor["forward_calls"] == 4 and ours["forward_calls"] == 2
    assert anchor["sequences"] == ours["sequences"] == 2 * 2 * tt.BATCH
    assert anchor["autocast"] == [False] and ours["autocast"] == [True]
    for r in (anchor, ours):
        assert r["steps"] == 2 and r["seconds"] > 0 and r["peak_rss_mb"] > 0
        assert r["sentences_per_s"] == pytest.approx(2 * tt.BATCH / r["seconds"])
        assert 0 <= r["padding_fraction"] < 1 and r["useful_flops"] <= r["executed_flops"]
