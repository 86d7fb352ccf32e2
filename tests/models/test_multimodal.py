"""Multimodal train-time wrapper: projection heads, grounding inputs, the saved model is a plain text encoder."""

from __future__ import annotations

import math

import pytest
import torch

from capcse.models.encoder import load_sentence_transformer
from capcse.models.heads import apply_training_form
from capcse.models.multimodal import MultimodalModel, ProjectionHead


def test_projection_head_hand_computed():
    head = ProjectionHead(2, 2)
    with torch.no_grad():
        head.dense.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        head.dense.bias.copy_(torch.tensor([0.0, -1.0]))
    out = head(torch.tensor([[1.0, 1.0]]))
    y = torch.tensor([math.tanh(1.0), math.tanh(1.0)])
    assert torch.allclose(out[0], y / y.norm(), atol=1e-7)
    assert out.norm(dim=-1).item() == pytest.approx(1.0)


def features(model, texts):
    return model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)


def test_grounding_inputs(tiny_bert_path):
    torch.manual_seed(0)
    st = load_sentence_transformer(tiny_bert_path, device="cpu")
    apply_training_form(st, "cls", "fresh", seed=0)          # SimCSE training form: MLP over [CLS]
    mm = MultimodalModel(st, image_dim=7, proj_dim=5, grounding_input="cls_before_pooler")
    mm.eval()
    feats = features(st, ["a dog runs", "two cats sleep on a mat"])
    with torch.no_grad():
        sentence, source = mm.embed(feats)
        hidden = st[0].auto_model(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"])
    assert torch.allclose(source, hidden.last_hidden_state[:, 0], atol=1e-6)   # MCSE's l_pool: [CLS] before the MLP
    assert torch.allclose(sentence, hidden.pooler_output, atol=1e-6)          # the contrastive loss sees MLP([CLS])
    out = mm(feats)
    assert out["grounding"].shape == (2, 5) and torch.allclose(out["grounding"].norm(dim=-1), torch.ones(2))
    assert mm.project_images(torch.randn(3, 7)).shape == (3, 5)

    mm2 = MultimodalModel(st, image_dim=7, proj_dim=5, grounding_input="sentence")
    with torch.no_grad():
        s2, src2 = mm2.embed(feats)
    assert torch.equal(s2, src2)


def test_saved_model_is_a_plain_text_encoder(tmp_path, tiny_bert_path):
    from sentence_transformers import SentenceTransformer

    st = load_sentence_transformer(tiny_bert_path, device="cpu", pooler="avg")
    mm = MultimodalModel(st, image_dim=4, proj_dim=3)
    mm.save_text_encoder(tmp_path / "model")
    mm.save_heads(tmp_path / "heads.safetensors")
    names = {p.name for p in (tmp_path / "model").rglob("*")}
    assert "model.safetensors" in names and not any("head" in n for n in names)
    from safetensors.torch import load_file

    heads = load_file(tmp_path / "heads.safetensors")
    assert set(heads) == {"text_head.dense.weight", "text_head.dense.bias", "image_head.dense.weight",
                          "image_head.dense.bias"}
    reloaded = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    texts = ["a man rides a horse", "a woman"]
    a = st.encode(texts, convert_to_tensor=True)
    b = reloaded.encode(texts, convert_to_tensor=True)
    assert torch.allclose(a, b, atol=1e-6)
    assert sum(p.numel() for p in reloaded.parameters()) == sum(p.numel() for p in st.parameters())
