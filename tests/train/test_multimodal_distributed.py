"""Multi-device MCSE / DALR: two CPU processes (gloo) with DDP give the single-process full-batch gradient.

Each process holds part of an image-caption batch. The objective gathers the sentence and grounding
embeddings and the row labels, so in-batch negatives, same-image masks and the teacher's ranking span
both processes; DDP averages the encoder's gradients and hooks average the projection heads'. The
result must equal one process computing the loss on the whole batch. Dropout is off (``eval()``).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # two spawned processes import torch + transformers

CAPTIONS = ["a dog runs on grass", "two cats sleep on a sofa", "a man rides a red bike", "children play football",
            "a red car on a wet road", "a woman reads a book", "birds fly over the sea", "a boy jumps into water"]
IMAGE_ROWS = (0, 1, 2, 3, 4, 1, 2, 0)   # captions 0/7, 1/5 and 2/6 describe the same image
# (name, method, rows of rank 0, weights)
CASES = [
    ("mcse", "mcse", 4, {}),
    ("dalr", "dalr", 4, {}),
    ("dalr_uneven", "dalr", 3, {}),
]


def _build(model_path, method, weights, teacher_path=None):
    from capcse.models.encoder import load_encoder, load_sentence_transformer
    from capcse.train.multimodal import MultimodalConfig, MultimodalObjective, TeacherBank, TextLookup
    from capcse.train.recipe import recipe_from_dict

    model = load_sentence_transformer(model_path, device="cpu", pooler="avg")
    model.eval()
    teacher = None
    if method == "dalr":
        enc = load_encoder(teacher_path or model_path, device="cpu", pooler="cls_before_pooler")
        teacher = TeacherBank(["tiny-teacher"], mode="batch", encoders=[enc])
    cfg = MultimodalConfig.from_recipe(recipe_from_dict({
        "loss": {"name": method}, "multimodal": {"pairs": "x", "teachers": ["t"] if teacher else [],
                                                 "weights": weights}}))
    feats = np.abs(np.random.default_rng(0).normal(size=(5, 6))).astype(np.float32)
    torch.manual_seed(0)  # the same heads as the single-process reference
    obj = MultimodalObjective(model, method, cfg, temperature=0.05, image_features=feats,
                              pair_image_rows=np.array(IMAGE_ROWS), texts=TextLookup(None, CAPTIONS), teacher=teacher)
    return model, obj


def _grads(module):
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def _run(obj, model, rows):
    from capcse.train.multimodal import pair_label

    labels = torch.tensor([pair_label(p) for p in rows])
    terms = obj([dict(model.preprocess([CAPTIONS[p] for p in rows]))], labels)
    loss = sum(terms.values())
    loss.backward()
    return {k: float(v.detach()) for k, v in terms.items()}


def _worker(rank: int, model_path: str) -> dict:
    """One process of the gloo group (spawned by the ``run_gloo_workers`` fixture)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    results = {}
    for name, method, first, weights in CASES:
        model, obj = _build(model_path, method, weights)
        if rank == 1:  # heads start from rank 0's values whatever this process initialised
            for p in obj.mm.text_head.parameters():
                p.data.add_(1.0)
        # what the sentence-transformers Trainer does under DDP (find_unused_parameters: the
        # Trainer's choice for a SentenceTransformer; BERT's pooler is unused by mean pooling)
        obj.model = DDP(model, find_unused_parameters=True)
        rows = list(range(first)) if rank == 0 else list(range(first, 8))
        model.zero_grad(set_to_none=True)
        obj.mm.zero_grad(set_to_none=True)
        terms = _run(obj, model, rows)
        results[name] = {"terms": terms, "encoder": _grads(model), "heads": _grads(obj.mm.text_head) |
                         {f"image.{k}": v for k, v in _grads(obj.mm.image_head).items()}}
    return results


@pytest.fixture(scope="module")
def ddp_results(tiny_bert_path, run_gloo_workers):
    return run_gloo_workers(_worker, tiny_bert_path)


def _assert_close(a, b, min_len):
    assert a.keys() == b.keys() and len(a) >= min_len
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_multimodal_ddp_gradient_equals_single_process_full_batch(ddp_results, tiny_bert_path, name):
    _, method, _, weights = next(c for c in CASES if c[0] == name)
    model, obj = _build(str(tiny_bert_path), method, weights)
    terms = _run(obj, model, list(range(8)))
    single = {"encoder": _grads(model), "heads": _grads(obj.mm.text_head) |
              {f"image.{k}": v for k, v in _grads(obj.mm.image_head).items()}}
    if method == "dalr":
        assert terms["ranking"] > 0 and terms["soft_label"] > 0 and terms["global_alignment"] > 0
    for rank in range(2):
        got = ddp_results[rank][name]
        for term, value in terms.items():  # every process computes the whole batch's loss
            assert got["terms"][term] == pytest.approx(value, rel=1e-5, abs=1e-7), term
        _assert_close(got["encoder"], single["encoder"], 10)
        _assert_close(got["heads"], single["heads"], 4)


def test_sampler_under_two_processes_gives_each_step_one_kind():
    from datasets import Dataset

    from capcse.train.multimodal import MixedModalityBatchSampler, build_mixed_dataset, mcse_schedule

    texts = [f"sentence {i}" for i in range(40)]
    ds = build_mixed_dataset(Dataset.from_dict({"text": texts}), CAPTIONS)
    labels = np.array(ds["label"])
    sampler = MixedModalityBatchSampler(ds, batch_size=4, drop_last=False, seed=1, world_size=2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 * len(mcse_schedule(10 // 2, 2 // 2))
    kinds = [bool((labels[b] < 0).all()) for b in batches]
    assert all((labels[b] < 0).all() or (labels[b] >= 0).all() for b in batches)
    # accelerate deals batches round-robin: rank 0 takes 0, 2, 4, ...; rank 1 takes 1, 3, 5, ...
    assert kinds[0::2] == kinds[1::2] == mcse_schedule(5, 1)
    # MCSE's formula over 5 text + 1 pair global steps: stride 5, pairs at slots 0 and 5, text at 1-4
    text_rows = [i for b, k in zip(batches, kinds) if not k for i in b]
    assert len(text_rows) == 4 * 2 * 4 and len(set(text_rows)) == len(text_rows)  # no sentence twice
    assert set(text_rows) <= set(range(40))
    one = MixedModalityBatchSampler(ds, batch_size=4, drop_last=False, seed=1, world_size=1)
    assert [bool((labels[b] < 0).all()) for b in one] == mcse_schedule(10, 2)  # one process: MCSE's schedule
