"""Each pooler against hand-computed tensors and against the raw Hugging Face outputs."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from capcse.models import POOLERS, load_encoder, masked_mean, pool

SENTS = ["a man is playing a guitar .", "two dogs run", "hello"]


def test_masked_mean_hand_computed():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(masked_mean(hidden, mask), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


def test_pool_by_name_hand_computed():
    # 3 layers of hidden states (embeddings + 2 transformer layers), batch 1, 2 tokens (1 real), dim 2
    h0 = torch.tensor([[[1.0, 1.0], [9.0, 9.0]]])
    h1 = torch.tensor([[[2.0, 4.0], [9.0, 9.0]]])
    h2 = torch.tensor([[[6.0, 8.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 0]])
    pooled_out = torch.tensor([[0.5, -0.5]])
    hs = (h0, h1, h2)
    assert pool("cls", mask, h2, pooled_out, hs).tolist() == [[0.5, -0.5]]
    assert pool("cls_before_pooler", mask, h2, pooled_out, hs).tolist() == [[6.0, 8.0]]
    assert pool("avg", mask, h2, pooled_out, hs).tolist() == [[6.0, 8.0]]
    assert pool("avg_top2", mask, h2, pooled_out, hs).tolist() == [[4.0, 6.0]]        # (h1 + h2) / 2
    assert pool("avg_first_last", mask, h2, pooled_out, hs).tolist() == [[4.0, 6.0]]  # hidden_states[1], not [0]
    # the paper's first-last avg.: the static embeddings h0 with the last layer, (h0 + h2) / 2
    assert pool("avg_first_last_paper", mask, h2, pooled_out, hs).tolist() == [[3.5, 4.5]]
    with pytest.raises(ValueError, match="unknown pooler"):
        pool("max", mask, h2)
    with pytest.raises(ValueError, match="pooler_output"):
        pool("cls", mask, h2, None, hs)


def _reference(path, name):
    """What SimCSE's evaluation.py computes, written out by hand from the raw model outputs."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tok(SENTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    m = batch["attention_mask"].unsqueeze(-1).float()
    hs = out.hidden_states
    if name == "cls":
        return out.pooler_output
    if name == "cls_before_pooler":
        return out.last_hidden_state[:, 0]
    if name in ("avg", "mean"):
        return (out.last_hidden_state * m).sum(1) / m.sum(1)
    if name == "avg_top2":
        return ((hs[-1] + hs[-2]) / 2 * m).sum(1) / m.sum(1)
    if name == "avg_first_last":
        return ((hs[1] + hs[-1]) / 2 * m).sum(1) / m.sum(1)
    if name == "avg_first_last_paper":
        return ((hs[0] + hs[-1]) / 2 * m).sum(1) / m.sum(1)
    raise AssertionError(name)


@pytest.mark.parametrize("name", POOLERS)
def test_encoder_pooler_matches_raw_model(tiny_bert_path, name):
    enc = load_encoder(tiny_bert_path, pooler=name, device="cpu")
    got = enc.encode(SENTS)
    want = _reference(tiny_bert_path, name).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name", ["avg_first_last", "avg_first_last_paper"])
def test_layer_pooling_round_trip(tiny_bert_path, tmp_path, name):
    """A model saved with a layer-averaging pooler reloads (sentence-transformers) with the same embeddings."""
    from sentence_transformers import SentenceTransformer

    enc = load_encoder(tiny_bert_path, pooler=name, device="cpu")
    enc.model.save(str(tmp_path / "m"))
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert [type(m).__name__ for m in again] == ["Transformer", "WeightedLayerPooling", "Pooling"]
    np.testing.assert_allclose(again.encode(SENTS), enc.encode(SENTS), atol=1e-5)


def test_cls_model_saved_loads_in_plain_sentence_transformers(tiny_bert_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    enc = load_encoder(tiny_bert_path, pooler="cls", device="cpu")
    enc.model.save(str(tmp_path / "m"))
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    np.testing.assert_allclose(again.encode(SENTS), _reference(tiny_bert_path, "cls").numpy(), atol=1e-5)
