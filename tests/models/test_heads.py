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


# ----------------------------------------------------------------------------- MLM head initialisation
MARK = {"dense": 0.125, "norm_weight": 0.5, "norm_bias": -0.25, "bias": 0.375}


def _mark_bert(model):
    head = model.cls.predictions
    with torch.no_grad():
        head.transform.dense.weight.fill_(MARK["dense"])
        head.transform.LayerNorm.weight.fill_(MARK["norm_weight"])
        head.transform.LayerNorm.bias.fill_(MARK["norm_bias"])
        head.bias.fill_(MARK["bias"])


def _mark_roberta(model):
    head = model.lm_head
    with torch.no_grad():
        head.dense.weight.fill_(MARK["dense"])
        head.layer_norm.weight.fill_(MARK["norm_weight"])
        head.layer_norm.bias.fill_(MARK["norm_bias"])
        head.bias.fill_(MARK["bias"])


@pytest.fixture(scope="module")
def mlm_checkpoints(tmp_path_factory, minilm_path):
    """Tiny BertForMaskedLM (safetensors and .bin) and RobertaForMaskedLM folders whose MLM heads hold
    recognisable constants; the BERT ones carry the real uncased tokenizer."""
    from transformers import (BertConfig, BertForMaskedLM, BertTokenizerFast, RobertaConfig,
                              RobertaForMaskedLM)

    tok = BertTokenizerFast.from_pretrained(str(minilm_path))
    kw = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=37, max_position_embeddings=128)
    out = {}
    torch.manual_seed(0)
    bert = BertForMaskedLM(BertConfig(**kw))
    _mark_bert(bert)
    for safe in (True, False):
        folder = tmp_path_factory.mktemp(f"bert-mlm-{safe}")
        bert.save_pretrained(folder, safe_serialization=safe)
        tok.save_pretrained(folder)
        out["bert" if safe else "bert-bin"] = folder
    roberta = RobertaForMaskedLM(RobertaConfig(**{**kw, "vocab_size": 100}))
    _mark_roberta(roberta)
    out["roberta"] = tmp_path_factory.mktemp("roberta-mlm")
    roberta.save_pretrained(out["roberta"])
    return out


def _base(folder):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder))


def _is_marked(head):
    return (torch.all(head.dense.weight == MARK["dense"]) and torch.all(head.norm.weight == MARK["norm_weight"])
            and torch.all(head.norm.bias == MARK["norm_bias"]) and torch.all(head.decoder.bias == MARK["bias"]))


def _is_fresh(head):
    """BERT's initialisation (SimCSE's fresh head): N(0, 0.02) weights, zero biases, LayerNorm 1 / 0."""
    return (abs(float(head.dense.weight.detach().std()) - 0.02) < 0.005
            and abs(float(head.decoder.weight.detach().std()) - 0.02) < 0.002
            and torch.all(head.decoder.bias == 0) and torch.all(head.dense.bias == 0)
            and torch.all(head.norm.weight == 1) and torch.all(head.norm.bias == 0))


@pytest.mark.parametrize("which", ["bert", "bert-bin", "roberta"])
def test_pretrained_mlm_head_is_loaded(mlm_checkpoints, which):
    """loss.mlm_head_init=pretrained: cls.predictions.* (BERT, safetensors or .bin) / lm_head.* (RoBERTa)
    is loaded; the decoder holds the checkpoint's (tied) input embeddings as its own untied copy."""
    from capcse.models.heads import build_mlm_head

    base = _base(mlm_checkpoints[which])
    head, note = build_mlm_head(base, str(mlm_checkpoints[which]), "pretrained")
    assert _is_marked(head)
    emb = base.get_input_embeddings().weight
    assert torch.equal(head.decoder.weight, emb) and head.decoder.weight.data_ptr() != emb.data_ptr()
    assert ("cls.predictions.*" if which.startswith("bert") else "lm_head.*") in note


def test_simcse_mode_loads_what_simcse_loads(mlm_checkpoints):
    """loss.mlm_head_init=simcse (the default): RobertaForCL's lm_head matches lm_head.* and is loaded;
    BertForCL's lm_head does not match cls.predictions.*, so a BERT head starts fresh (BERT init)."""
    from capcse.models.heads import build_mlm_head

    roberta, _ = build_mlm_head(_base(mlm_checkpoints["roberta"]), str(mlm_checkpoints["roberta"]), "simcse")
    assert _is_marked(roberta)
    torch.manual_seed(0)
    bert, note = build_mlm_head(_base(mlm_checkpoints["bert"]), str(mlm_checkpoints["bert"]), "simcse")
    assert _is_fresh(bert) and "as SimCSE's code leaves it" in note
    fresh, note = build_mlm_head(_base(mlm_checkpoints["roberta"]), str(mlm_checkpoints["roberta"]), "fresh")
    assert _is_fresh(fresh) and note == "fresh"


def test_pretrained_without_a_head_warns_and_starts_fresh(tiny_bert_path, caplog):
    from capcse.models.heads import build_mlm_head

    with caplog.at_level("WARNING", logger="capcse.models.heads"):
        head, note = build_mlm_head(_base(tiny_bert_path), str(tiny_bert_path), "pretrained")
    assert _is_fresh(head) and note.startswith("fresh")
    assert "has no MLM head" in caplog.text and str(tiny_bert_path) in caplog.text


def test_objective_starts_its_mlm_head_from_the_checkpoint(mlm_checkpoints):
    """The wiring: a SimCSE objective on a SentenceTransformer built from a BertForMaskedLM folder."""
    from capcse.losses.simcse import SimCSELoss
    from capcse.train.objective import SimCSEObjective

    model = load_sentence_transformer(str(mlm_checkpoints["bert"]), device="cpu", pooler="cls")
    objective = SimCSEObjective(model, SimCSELoss(0.05), mlm_weight=0.1, mlm_head_init="pretrained")
    assert _is_marked(objective.mlm_head) and objective.get_config_dict()["mlm_head_init"] == "pretrained"
    assert _is_fresh(SimCSEObjective(model, SimCSELoss(0.05), mlm_weight=0.1).mlm_head)
