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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gloo_entry(rank: int, world: int, port: int, worker, model_path: str, out_dir: str) -> None:
    import os

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.save(worker(rank, model_path), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def run_gloo_workers(tmp_path_factory):
    """``run(worker, model_path, world=2)``: spawn ``world`` processes in one gloo group (a free
    127.0.0.1 port, one torch thread each), call ``worker(rank, model_path)`` (a module-level function)
    in each and return what each returned, in rank order."""
    import torch
    import torch.multiprocessing as mp

    def run(worker, model_path, world: int = 2):
        out = tmp_path_factory.mktemp("gloo")
        mp.start_processes(_gloo_entry, args=(world, _free_port(), worker, str(model_path), str(out)), nprocs=world,
                           join=True, start_method="spawn")
        return [torch.load(out / f"rank{r}.pt") for r in range(world)]

    return run
