"""The SimCSE MLP head: training and inference forms, for encoders with a pooler (BERT) and without
(DistilBERT), and the temporary inference view used for dev evaluation during training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capcse.models.encoder import load_sentence_transformer
from capcse.models.heads import (MLMHead, apply_inference_form, apply_training_form, has_mlp_pooler,
                                 inference_view)

SENTS = ["a man is playing a guitar .", "the cat sleeps .", "two dogs run through the snow ."]


@pytest.fixture(scope="module")
def tiny_distilbert_path(tmp_path_factory, minilm_path):
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertModel

    out = tmp_path_factory.mktemp("tiny-distilbert")
    tok = BertTokenizerFast.from_pretrained(str(minilm_path))
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=tok.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
                           max_position_embeddings=128)
    DistilBertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def raw_outputs(path):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    with torch.no_grad():
        return model(**tok(SENTS, padding=True, return_tensors="pt"))


def encode(model):
    model.eval()
    return model.encode(SENTS, convert_to_numpy=True)


def test_fresh_mlp_is_bert_initialised_and_seeded(tiny_bert_path):
    a = load_sentence_transformer(tiny_bert_path, device="cpu")
    b = load_sentence_transformer(tiny_bert_path, device="cpu")
    base = a[0].auto_model.pooler.dense.weight.detach().clone()
    state = torch.random.get_rng_state()
    apply_training_form(a, "cls", "fresh", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    apply_training_form(b, "cls", "fresh", seed=1)
    w = a[0].auto_model.pooler.dense
    assert torch.equal(w.weight, b[0].auto_model.pooler.dense.weight) and not torch.equal(w.weight, base)
    assert w.weight.std().item() == pytest.approx(0.02, rel=0.1) and torch.count_nonzero(w.bias) == 0
    c = load_sentence_transformer(tiny_bert_path, device="cpu")
    apply_training_form(c, "cls", "pretrained")
    assert torch.equal(c[0].auto_model.pooler.dense.weight, base)


def test_bert_training_form_is_pooler_output_and_inference_form_is_cls(tiny_bert_path):
    model = load_sentence_transformer(tiny_bert_path, device="cpu")
    apply_training_form(model, "cls", "pretrained")
    raw = raw_outputs(tiny_bert_path)
    np.testing.assert_allclose(encode(model), raw.pooler_output.numpy(), atol=1e-5)
    apply_inference_form(model, "cls", mlp_only_train=False)  # sup SimCSE keeps the MLP
    np.testing.assert_allclose(encode(model), raw.pooler_output.numpy(), atol=1e-5)
    apply_inference_form(model, "cls", mlp_only_train=True)  # unsup SimCSE drops it
    np.testing.assert_allclose(encode(model), raw.last_hidden_state[:, 0].numpy(), atol=1e-5)


def test_inference_view_switches_and_restores(tiny_bert_path):
    model = load_sentence_transformer(tiny_bert_path, device="cpu")
    apply_training_form(model, "cls", "pretrained")
    modules = list(model._modules.values())
    raw = raw_outputs(tiny_bert_path)
    with inference_view(model, "cls", mlp_only_train=True):
        np.testing.assert_allclose(encode(model), raw.last_hidden_state[:, 0].numpy(), atol=1e-5)
    assert list(model._modules.values()) == modules
    np.testing.assert_allclose(encode(model), raw.pooler_output.numpy(), atol=1e-5)
    with inference_view(model, "cls", mlp_only_train=False) as same:
        assert same is model and list(model._modules.values()) == modules


def test_encoder_without_pooler_gets_a_dense_tanh_head(tiny_distilbert_path, tmp_path):
    """DistilBERT has no pooler: the MLP is a sentence-transformers Dense(tanh) after [CLS] pooling. With
    mlp_only_train it is dropped (every loading path gives [CLS]); without, it is saved as a module, so
    SentenceTransformer(path) includes it while AutoModel (which has no place for it) gives [CLS]."""
    from sentence_transformers import SentenceTransformer

    model = load_sentence_transformer(tiny_distilbert_path, device="cpu")
    assert not has_mlp_pooler(model)
    apply_training_form(model, "cls", "fresh", seed=0)
    assert type(model[-1]).__name__ == "Dense" and isinstance(model[-1].activation_function, torch.nn.Tanh)
    cls = raw_outputs(tiny_distilbert_path).last_hidden_state[:, 0]
    dense = model[-1].linear
    with torch.no_grad():
        np.testing.assert_allclose(encode(model), torch.tanh(dense(cls)).numpy(), atol=1e-5)

    model.save(str(tmp_path / "kept"))
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path / "kept"), device="cpu").encode(SENTS),
                               torch.tanh(dense(cls)).detach().numpy(), atol=1e-5)
    apply_inference_form(model, "cls", mlp_only_train=True)
    assert type(model[-1]).__name__ == "Pooling"
    model.save(str(tmp_path / "dropped"))
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path / "dropped"), device="cpu").encode(SENTS),
                               cls.numpy(), atol=1e-5)
    np.testing.assert_allclose(raw_outputs(tmp_path / "dropped").last_hidden_state[:, 0].numpy(), cls.numpy(),
                               atol=1e-5)


def test_other_poolers_have_no_head(tiny_bert_path):
    model = load_sentence_transformer(tiny_bert_path, device="cpu")
    apply_training_form(model, "avg")
    raw = raw_outputs(tiny_bert_path)
    from transformers import AutoTokenizer

    mask = AutoTokenizer.from_pretrained(str(tiny_bert_path))(SENTS, padding=True, return_tensors="pt")["attention_mask"]
    mean = (raw.last_hidden_state * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    np.testing.assert_allclose(encode(model), mean.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="mlp_init"):
        apply_training_form(model, "cls", "random")


def test_mlm_head_shapes():
    head = MLMHead(8, 50)
    assert head(torch.randn(2, 3, 8)).shape == (2, 3, 50)
