"""Multi-device SimCSE: two CPU processes (gloo) with DDP give the single-process full-batch gradient.

Each process holds half of the batch; the candidates (positives, hard negatives) are gathered with
gradients, so the in-batch negatives of every anchor come from both processes. DDP averages the
parameter gradients; the result must equal one process computing the loss on the whole batch.
Dropout is off (``eval()``) so both sides see the same network; GradCache under DDP is checked too.
"""

from __future__ import annotations


import pytest
import torch

pytestmark = pytest.mark.slow  # two spawned processes import torch + transformers: ~20-60 s

TEXTS = [
    ["a man is playing a guitar .", "a woman is slicing an onion .", "two dogs run through the snow .",
     "the cat sleeps on the warm windowsill .", "children are playing football .", "a chef cooks pasta .",
     "the train arrives late .", "an old man reads a newspaper ."],
    ["a man plays guitar .", "someone cuts an onion .", "dogs are running in snow .", "a cat is asleep .",
     "kids play a ball game .", "pasta is being cooked .", "the train is delayed .", "a man reads ."],
    ["a woman is singing .", "a man eats an apple .", "a cat chases a mouse .", "a dog barks loudly .",
     "adults watch television .", "a chef burns the bread .", "the plane takes off early .", "nobody reads ."],
]
# (name, columns, rows of rank 0, objective kwargs)
CASES = [
    ("unsup", 1, 4, {}),
    ("sup_hardneg", 3, 4, {"hard_negative_weight": 1.5}),
    ("uneven", 3, 5, {"hard_negative_weight": 0.7}),
    ("cached", 3, 4, {"mini_batch_size": 3}),
    ("no_gather", 1, 4, {"gather_across_devices": False}),
]


def _build(model_path):
    from capcse.models.encoder import load_sentence_transformer
    from capcse.models.heads import apply_training_form

    model = load_sentence_transformer(model_path, device="cpu", max_length=32)
    apply_training_form(model, "cls", "fresh", seed=0)
    model.eval()  # dropout off: both sides compute the same function
    return model


def _objective(model, kwargs):
    from capcse.losses.simcse import SimCSELoss
    from capcse.train.objective import CachedSimCSEObjective, SimCSEObjective

    kwargs = dict(kwargs)
    loss = SimCSELoss(0.05, kwargs.pop("hard_negative_weight", 0.0))
    if "mini_batch_size" in kwargs:
        return CachedSimCSEObjective(model, loss, **kwargs)
    return SimCSEObjective(model, loss, **kwargs)


def _grads(module):
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def _worker(rank: int, model_path: str) -> dict:
    """One process of the gloo group (spawned by the ``run_gloo_workers`` fixture)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = _build(model_path)
    ddp = DDP(model)
    results = {}
    for name, columns, first, kwargs in CASES:
        rows = slice(0, first) if rank == 0 else slice(first, 8)
        objective = _objective(model, kwargs)
        objective.model = ddp  # what the sentence-transformers Trainer does under DDP
        feats = [dict(model.preprocess(TEXTS[c][rows])) for c in range(columns)]
        model.zero_grad(set_to_none=True)
        loss = objective(feats)
        loss.backward()
        results[name] = {"loss": loss.item(), "grads": _grads(model)}
    # MLM auxiliary loss: the MLM head is not inside DDP; its gradients must be averaged too
    objective = _objective(model, {})
    objective.__init__(model, objective.loss, mlm_weight=0.1, mlm_probability=0.3)
    objective.model = ddp
    torch.manual_seed(100 + rank)  # different masks on each process
    model.zero_grad(set_to_none=True)
    objective([dict(model.preprocess(TEXTS[0][rank * 4:(rank + 1) * 4]))]).backward()
    results["mlm_head"] = {"grads": _grads(objective.mlm_head), "encoder": _grads(model)}
    return results


@pytest.fixture(scope="module")
def ddp_results(tiny_bert_path, run_gloo_workers):
    return run_gloo_workers(_worker, tiny_bert_path)


def _single_process(model_path, name):
    _, columns, first, kwargs = next(c for c in CASES if c[0] == name)
    model = _build(model_path)
    objective = _objective(model, kwargs)
    feats = [dict(model.preprocess(TEXTS[c])) for c in range(columns)]
    anchors_loss = None
    if first != 4:  # uneven halves: DDP averages the two processes' mean losses
        from capcse.train.objective import concat_features

        cols = objective.columns(feats)
        views = list(objective.embed(concat_features(cols, objective.pad_token_id)).split(8))
        per_anchor = objective.loss(*views[:2], views[2] if len(views) > 2 else None, reduction="none")
        anchors_loss = (per_anchor[:first].mean() + per_anchor[first:].mean()) / 2
        anchors_loss.backward()
    else:
        objective(feats).backward()
    return _grads(model)


def _assert_close(a, b):
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("name", ["unsup", "sup_hardneg", "uneven", "cached"])
def test_ddp_gradient_equals_single_process_full_batch(ddp_results, tiny_bert_path, name):
    single = _single_process(str(tiny_bert_path), name)
    for rank in range(2):  # DDP leaves the same averaged gradient on every process
        _assert_close(ddp_results[rank][name]["grads"], single)


def test_negatives_really_span_both_processes(ddp_results):
    """Without the gather each process only contrasts its own half: a different (wrong) gradient."""
    gathered, local = ddp_results[0]["unsup"]["grads"], ddp_results[0]["no_gather"]["grads"]
    assert max((gathered[k] - local[k]).abs().max().item() for k in gathered) > 1e-4
    assert ddp_results[0]["unsup"]["loss"] > ddp_results[0]["no_gather"]["loss"]  # 8 candidates, not 4


def test_mlm_head_gradients_are_averaged_across_processes(ddp_results):
    a, b = ddp_results[0]["mlm_head"], ddp_results[1]["mlm_head"]
    assert len(a["grads"]) == 6
    for k in a["grads"]:
        torch.testing.assert_close(a["grads"][k], b["grads"][k])
        assert a["grads"][k].abs().sum() > 0
    _assert_close(a["encoder"], b["encoder"])
