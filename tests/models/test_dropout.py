"""capcse.models.dropout: cheap dropout masks, the dropout module swap and the attention function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from capcse.models.dropout import (ATTENTION_NAME, FastDropout, fast_dropout, fast_dropout_attention, keep_mask,
                                   use_fast_dropout)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_keep_rate_per_lane(p):
    torch.manual_seed(0)
    mask = keep_mask((4, 250_000), p)
    assert mask.dtype == torch.bool and mask.shape == (4, 250_000)
    # each of the four 16-bit lanes of a 64-bit draw keeps with probability 1 - p (5 sigma over 250k)
    lanes = mask.reshape(-1, 4).float().mean(0)
    sigma = (p * (1 - p) / 250_000) ** 0.5
    assert torch.all((lanes - (1 - p)).abs() <= 5 * sigma + 2 ** -16), lanes


def test_lanes_are_independent():
    torch.manual_seed(1)
    m = keep_mask((400_000,), 0.5).reshape(-1, 4).float()
    # P(both kept) = 1/4 for every pair of lanes of one draw, and for neighbouring draws
    for a in range(4):
        for b in range(a + 1, 4):
            assert (m[:, a] * m[:, b]).mean().item() == pytest.approx(0.25, abs=0.005)
    assert (m[:-1, 3] * m[1:, 0]).mean().item() == pytest.approx(0.25, abs=0.005)


def test_mask_follows_torch_seed_and_odd_sizes():
    torch.manual_seed(3)
    a = keep_mask((7, 3), 0.2)
    torch.manual_seed(3)
    b = keep_mask((7, 3), 0.2)
    assert torch.equal(a, b) and a.shape == (7, 3)
    g = torch.Generator().manual_seed(5)
    c = keep_mask((1001,), 0.3, generator=g)
    assert c.shape == (1001,)
    with pytest.raises(ValueError):
        keep_mask((3,), 1.0)


def test_fast_dropout_values_and_gradient():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(0)
    y = fast_dropout(x, 0.25)
    torch.manual_seed(0)
    kept = keep_mask(x.shape, 0.25)
    torch.testing.assert_close(y, torch.where(kept, x / 0.75, torch.zeros(())), rtol=1e-6, atol=1e-7)
    assert 0 < (~kept).sum() < kept.sum()
    g = torch.randn_like(x)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, g / 0.75, torch.zeros(())), rtol=1e-6, atol=1e-7)
    # identity in evaluation or with p = 0
    assert fast_dropout(x, 0.25, training=False) is x
    assert fast_dropout(x, 0.0) is x


def test_fast_dropout_bf16():
    x = torch.randn(128, 64).bfloat16()
    y = fast_dropout(x, 0.1)
    assert y.dtype == torch.bfloat16
    zeros = (y == 0).float().mean().item()
    assert 0.05 < zeros < 0.15


def test_module_train_eval():
    m = FastDropout(0.5)
    x = torch.ones(1000)
    m.eval()
    assert torch.equal(m(x), x)
    m.train()
    y = m(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0} and 300 < int((y == 0).sum()) < 700
    with pytest.raises(ValueError, match="inplace"):
        FastDropout(0.1, inplace=True)(x)


class _Attn(nn.Module):
    training = True
    is_causal = False


def _qkv(seed=0, b=3, h=2, n=5, d=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, requires_grad=True) for _ in range(3)]


def test_attention_without_dropout_is_sdpa():
    q, k, v = _qkv()
    mask = torch.ones(3, 1, 5, 5, dtype=torch.bool)
    mask[0, :, :, 3:] = False
    out, _ = fast_dropout_attention(_Attn(), q, k, v, mask, scaling=0.3, dropout=0.0)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    torch.testing.assert_close(out, ref.transpose(1, 2))


def test_attention_with_dropout_matches_the_math():
    q, k, v = _qkv(1)
    mask = torch.ones(3, 1, 5, 5, dtype=torch.bool)
    mask[1, :, :, 2:] = False
    torch.manual_seed(9)
    out, weights = fast_dropout_attention(_Attn(), q, k, v, mask, scaling=0.25, dropout=0.2)
    torch.manual_seed(9)
    kept = keep_mask((3, 2, 5, 5), 0.2)
    scores = (q @ k.transpose(-1, -2) * 0.25).masked_fill(~mask, float("-inf"))
    ref = ((scores.softmax(-1) * kept / 0.8) @ v).transpose(1, 2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert torch.all(weights[1, :, :, 2:] == 0)  # masked keys get no weight
    # the additive-mask form (eager masks) gives the same
    add = torch.zeros(3, 1, 5, 5).masked_fill(~mask, torch.finfo(torch.float32).min)
    torch.manual_seed(9)
    out2, _ = fast_dropout_attention(_Attn(), q, k, v, add, scaling=0.25, dropout=0.2)
    torch.testing.assert_close(out2, ref, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (q, k, v))


def test_causal_attention_without_a_mask():
    """Causal modules whose mask transformers dropped (SDPA's is_causal would stand in): masked anyway."""
    q, k, v = _qkv(2)
    causal = _Attn()
    causal.is_causal = True
    torch.manual_seed(5)
    out, weights = fast_dropout_attention(causal, q, k, v, None, scaling=0.2, dropout=0.1)
    assert torch.all(weights.triu(1) == 0)
    torch.manual_seed(5)
    kept = keep_mask((3, 2, 5, 5), 0.1)
    tri = torch.ones(5, 5, dtype=torch.bool).tril()
    scores = (q @ k.transpose(-1, -2) * 0.2).masked_fill(~tri, float("-inf"))
    ref = ((scores.softmax(-1) * kept / 0.9) @ v).transpose(1, 2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def _tiny(path, attention_dropout=0.1):
    from transformers import AutoModel

    torch.manual_seed(0)
    return AutoModel.from_pretrained(str(path), attention_probs_dropout_prob=attention_dropout)


def test_use_fast_dropout_on_a_bert(tiny_bert_path, tmp_path):
    from transformers import AutoModel

    stock, fast = _tiny(tiny_bert_path).eval(), _tiny(tiny_bert_path).eval()
    counts = use_fast_dropout(fast)
    assert not any(m.training for m in fast.modules())  # swapped modules keep the model's mode
    # embeddings + per layer (attention probs, attention output, FFN output) for 2 layers
    assert counts == {"modules": 7, "attention": 1}
    assert fast.config._attn_implementation == ATTENTION_NAME
    assert not any(type(m) is nn.Dropout for m in fast.modules())
    ids = torch.tensor([[101, 1037, 3899, 102, 0], [101, 2048, 3899, 2652, 102]])
    att = (ids != 0).long()
    stock.eval(), fast.eval()
    with torch.no_grad():  # evaluation: exactly the stock model
        torch.testing.assert_close(fast(input_ids=ids, attention_mask=att).last_hidden_state,
                                   stock(input_ids=ids, attention_mask=att).last_hidden_state)
    fast.train()
    torch.manual_seed(4)
    a = fast(input_ids=ids, attention_mask=att).last_hidden_state
    torch.manual_seed(4)
    b = fast(input_ids=ids, attention_mask=att).last_hidden_state
    c = fast(input_ids=ids, attention_mask=att).last_hidden_state
    torch.testing.assert_close(a, b)  # the seed fixes the masks
    assert (a - c).abs().max() > 1e-3  # dropout is on
    a.sum().backward()
    assert all(p.grad is not None for n, p in fast.named_parameters() if "pooler" not in n)
    # saved as a plain model: config.json does not name the training-time attention function
    fast.save_pretrained(tmp_path)
    assert "capcse" not in (tmp_path / "config.json").read_text()
    again = AutoModel.from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids, attention_mask=att).last_hidden_state,
                                   stock(input_ids=ids, attention_mask=att).last_hidden_state)


def test_training_with_zero_dropout_equals_stock(tiny_bert_path):
    """p = 0 everywhere: the swapped model is the stock model in training mode too (same math)."""
    from transformers import AutoModel

    kw = dict(attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    stock = AutoModel.from_pretrained(str(tiny_bert_path), **kw).train()
    fast = AutoModel.from_pretrained(str(tiny_bert_path), **kw).train()
    use_fast_dropout(fast)
    ids = torch.tensor([[101, 1037, 3899, 102, 0], [101, 2048, 3899, 2652, 102]])
    att = (ids != 0).long()
    torch.testing.assert_close(fast(input_ids=ids, attention_mask=att).last_hidden_state,
                               stock(input_ids=ids, attention_mask=att).last_hidden_state)


def test_recipe_switch(tiny_bert_path):
    from capcse.errors import ConfigError
    from capcse.train.trainer import wants_fast_dropout

    assert wants_fast_dropout("auto", torch.device("cpu"))
    assert not wants_fast_dropout("auto", torch.device("cuda", 0))
    assert wants_fast_dropout(True, "cuda") and wants_fast_dropout("on", "cpu")
    assert not wants_fast_dropout(False, "cpu") and not wants_fast_dropout("off", "cpu")
    with pytest.raises(ConfigError, match="fast_dropout"):
        wants_fast_dropout("sometimes", "cpu")


@pytest.mark.parametrize("setting,swapped", [("auto", True), ("off", False), ("on", True)])
def test_build_model_applies_the_setting(tiny_bert_path, setting, swapped):
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import build_model

    recipe = load_recipe("simcse-unsup-bert-base", [f"model.name={tiny_bert_path}", "train.device=cpu",
                                                    f"train.fast_dropout={setting}"])
    model = build_model(recipe)
    kinds = {type(m) for m in model.modules()}
    assert (FastDropout in kinds) == swapped and (nn.Dropout in kinds) != swapped


def test_attention_falls_back_to_sdpa_beyond_plain_attention():
    q, k, v = _qkv(3)
    grouped = _Attn()
    grouped.num_key_value_groups = 2
    _, weights = fast_dropout_attention(grouped, q, k, v, None, dropout=0.1)
    assert weights is None  # transformers' SDPA function (which returns no weights) did the work
    _, weights = fast_dropout_attention(_Attn(), q, k, v, None, dropout=0.1, position_bias=torch.zeros(1))
    assert weights is None
    _, weights = fast_dropout_attention(_Attn(), q, k, v, None, dropout=0.1)
    assert weights is not None


def _arch(name):
    from transformers import (DistilBertConfig, DistilBertModel, ModernBertConfig, ModernBertModel, MPNetConfig,
                              MPNetModel, RobertaConfig, RobertaModel)

    small = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    return {
        "roberta": lambda: RobertaModel(RobertaConfig(**small)),
        "distilbert": lambda: DistilBertModel(DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2,
                                                               hidden_dim=37)),
        "mpnet": lambda: MPNetModel(MPNetConfig(**small)),  # no attention interface: modules only
        "modernbert": lambda: ModernBertModel(ModernBertConfig(
            vocab_size=100, pad_token_id=1, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3,
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
            attention_dropout=0.1, mlp_dropout=0.1, embedding_dropout=0.1)),
    }[name]()


@pytest.mark.parametrize("name,attention", [("roberta", 1), ("distilbert", 1), ("mpnet", 0), ("modernbert", 1)])
def test_other_encoders(name, attention):
    torch.manual_seed(0)
    model = _arch(name).eval()
    ids = torch.tensor([[5, 6, 7, 8, 1], [5, 9, 10, 11, 12]])
    att = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=att).last_hidden_state
    counts = use_fast_dropout(model)
    assert counts["modules"] >= 4 and counts["attention"] == attention
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids, attention_mask=att).last_hidden_state, before)
    model.train()
    a = model(input_ids=ids, attention_mask=att).last_hidden_state
    b = model(input_ids=ids, attention_mask=att).last_hidden_state
    assert (a - b).abs().max() > 1e-3
    a.sum().backward()
