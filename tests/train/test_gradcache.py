"""GradCache (CachedSimCSEObjective): its parameter gradients equal the full-batch gradients."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers.base.losses.gradcache import _create_minibatch, _minibatch_ranges

from capcse.losses.simcse import SimCSELoss
from capcse.train.objective import CachedSimCSEObjective, SimCSEObjective, concat_features


def grads(module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def assert_same_grads(a: dict, b: dict, atol=1e-5):
    assert a.keys() == b.keys() and len(a) >= 6
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=1e-4, msg=lambda m: f"{name}: {m}")


def cached_grads(model, objective, feats, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = objective(feats)
    loss.backward()
    return loss.item(), grads(model)


def reference_grads(model, objective, feats, seed, mini_batch_size, mlm=False):
    """The full-batch loss over the very embeddings the mini-batched forward produces (same dropout
    masks: the same RNG stream, consumed in the same order), back-propagated in one go."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    cols = objective.columns(feats)
    n = cols[0]["input_ids"].size(0)
    batch = concat_features(cols, objective.pad_token_id)
    loss = 0.0
    if mlm:
        masked = objective.mlm_features(batch)
        total, count = 0.0, int((masked["mlm_labels"] != -100).sum())
        for b, e in _minibatch_ranges(masked, mini_batch_size):
            total = total + objective.mlm_sum(_create_minibatch(masked, b, e))[0]
        loss = objective.mlm_weight * total / max(count, 1)
    embs = [model(_create_minibatch(batch, b, e))["sentence_embedding"]
            for b, e in _minibatch_ranges(batch, mini_batch_size)]
    loss = objective.contrastive_loss(list(torch.cat(embs).split(n))) + loss
    loss.backward()
    return loss.item(), grads(model)


@pytest.mark.parametrize("columns,mini", [(1, 5), (3, 4), (2, 7)])
def test_gradcache_equals_full_batch_with_dropout(tiny_st, featurize, sentences, columns, mini):
    model = tiny_st()
    model.train()  # dropout ON
    texts = [sentences[:8], sentences[2:10], sentences[4:12]][:columns]
    feats = [featurize(model, t) for t in texts]
    loss = SimCSELoss(0.05, hard_negative_weight=0.5)
    cached = CachedSimCSEObjective(model, loss, mini_batch_size=mini)
    got_loss, got = cached_grads(model, cached, feats, seed=7)
    ref_loss, ref = reference_grads(model, cached, feats, seed=7, mini_batch_size=mini)
    assert got_loss == pytest.approx(ref_loss, abs=1e-6)
    assert_same_grads(got, ref)
    # not vacuous: dropout really changes the gradient (another seed, other masks)
    _, other = reference_grads(model, cached, feats, seed=8, mini_batch_size=mini)
    assert max((other[k] - ref[k]).abs().max().item() for k in ref) > 1e-4


def test_gradcache_equals_full_batch_with_fast_dropout(tiny_st, featurize, sentences):
    """capcse's CPU dropout (train.fast_dropout) draws from torch's generator, so RandContext replays it."""
    from capcse.models.dropout import use_fast_dropout

    model = tiny_st()
    assert use_fast_dropout(model)["attention"] == 1
    model.train()
    feats = [featurize(model, t) for t in (sentences[:8], sentences[2:10])]
    cached = CachedSimCSEObjective(model, SimCSELoss(0.05, hard_negative_weight=0.5), mini_batch_size=3)
    got_loss, got = cached_grads(model, cached, feats, seed=7)
    ref_loss, ref = reference_grads(model, cached, feats, seed=7, mini_batch_size=3)
    assert got_loss == pytest.approx(ref_loss, abs=1e-6)
    assert_same_grads(got, ref)
    _, other = reference_grads(model, cached, feats, seed=8, mini_batch_size=3)
    assert max((other[k] - ref[k]).abs().max().item() for k in ref) > 1e-4


def test_one_mini_batch_is_the_plain_objective_with_dropout(tiny_st, featurize, sentences):
    model = tiny_st()
    model.train()
    feats = [featurize(model, sentences[:6])]
    loss = SimCSELoss(0.05)
    plain_loss, plain = cached_grads(model, SimCSEObjective(model, loss), feats, seed=3)
    cached_loss, cached = cached_grads(model, CachedSimCSEObjective(model, loss, mini_batch_size=64), feats, seed=3)
    assert cached_loss == pytest.approx(plain_loss, abs=1e-6)
    assert_same_grads(cached, plain)


def test_mini_batches_equal_one_concatenated_forward_without_dropout(tiny_st, featurize, sentences):
    """Dropout off: the gradient is that of SimCSE's single [3N] forward, whatever the mini-batching."""
    model = tiny_st()
    model.eval()
    feats = [featurize(model, t) for t in (sentences[:8], sentences[1:9], sentences[3:11])]
    loss = SimCSELoss(0.05)
    _, plain = cached_grads(model, SimCSEObjective(model, loss), feats, seed=0)
    _, cached = cached_grads(model, CachedSimCSEObjective(model, loss, mini_batch_size=3), feats, seed=0)
    assert_same_grads(cached, plain)


def test_gradcache_with_mlm_auxiliary_loss(tiny_st, featurize, sentences):
    model = tiny_st()
    model.train()
    feats = [featurize(model, sentences[:8])]
    cached = CachedSimCSEObjective(model, SimCSELoss(0.05), mini_batch_size=5, mlm_weight=0.1,
                                   mlm_probability=0.3)
    got_loss, got = cached_grads(model, cached, feats, seed=11)
    got_head = grads(cached.mlm_head)
    cached.mlm_head.zero_grad(set_to_none=True)
    ref_loss, ref = reference_grads(model, cached, feats, seed=11, mini_batch_size=5, mlm=True)
    assert got_loss == pytest.approx(ref_loss, abs=1e-5)
    assert_same_grads(got, ref)
    assert_same_grads(got_head, grads(cached.mlm_head))


def test_gradient_accumulation_scaling_reaches_every_mini_batch(tiny_st, featurize, sentences):
    model = tiny_st()
    model.eval()
    feats = [featurize(model, sentences[:6])]
    cached = CachedSimCSEObjective(model, SimCSELoss(0.05), mini_batch_size=4)
    _, full = cached_grads(model, cached, feats, seed=0)
    model.zero_grad(set_to_none=True)
    (cached(feats) / 4).backward()
    for name, g in grads(model).items():
        torch.testing.assert_close(g * 4, full[name], atol=1e-6, rtol=1e-5)


def test_bad_mini_batch_size(tiny_st):
    with pytest.raises(ValueError):
        CachedSimCSEObjective(tiny_st(), SimCSELoss(), mini_batch_size=0)
