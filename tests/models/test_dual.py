"""The CLIPPINGS bi-encoder on tiny random configs (HF CLIP) and on MiniLM + EfficientNet-Lite0 towers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from capcse.losses.clip import CLIPLoss
from capcse.losses.supcon import SupConLoss
from capcse.models.dual import DualEncoder, record_embedding


def _pictures(n=4):
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (40 + k, 36, 3), dtype=np.uint8)) for k in range(n)]


TEXTS = ["a dog runs on grass", "two children play", "a red car", "a man rides a bike"]


def test_record_embedding_by_hand():
    img = torch.tensor([[3.0, 0.0]])
    txt = torch.tensor([[0.0, 0.5]])
    torch.testing.assert_close(record_embedding(img, txt, 0.5), torch.tensor([[0.5**0.5, 0.5**0.5]]))
    # im_wt .25: (.25, .75) / |(.25, .75)|
    torch.testing.assert_close(record_embedding(img, txt, 0.25), torch.tensor([[0.25, 0.75]]) / (0.25**2 + 0.75**2) ** 0.5)
    torch.testing.assert_close(record_embedding(img, None, 1.0), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(record_embedding(None, txt, 0.0), torch.tensor([[0.0, 1.0]]))


@pytest.fixture(scope="module")
def tiny_clip(minilm_path):
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = AutoTokenizer.from_pretrained(str(minilm_path))  # any tokenizer works for random weights
    cfg = CLIPConfig(
        text_config=dict(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=64, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=24,
    )
    torch.manual_seed(0)
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return DualEncoder.from_clip(CLIPModel(cfg).eval(), tokenizer=tok, image_processor=proc)


def test_clip_dual_encoder_matches_clipmodel(tiny_clip):
    pics = _pictures()
    pixels = tiny_clip.preprocess(pics)
    tokens = tiny_clip.tokenize(TEXTS)
    with torch.no_grad():
        out = tiny_clip(pixel_values=pixels, text_inputs=tokens)
        ref = tiny_clip.clip(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels)
    torch.testing.assert_close(out["image_embeds"], ref.image_embeds, rtol=1e-5, atol=1e-6)  # CLIP's are normalised
    torch.testing.assert_close(out["text_embeds"], ref.text_embeds, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["record_embeds"], F.normalize(ref.image_embeds + ref.text_embeds, dim=-1), rtol=1e-5, atol=1e-6)
    # the CLIP loss with the model's scale equals transformers' own CLIP loss
    with torch.no_grad():
        ours = CLIPLoss()(out["image_embeds"], out["text_embeds"], logit_scale=out["logit_scale"])
        theirs = tiny_clip.clip(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels, return_loss=True).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_encode_records_modes(tiny_clip):
    pics = _pictures()
    both = tiny_clip.encode_records(pics, TEXTS, batch_size=3)
    text_only = tiny_clip.encode_records(None, TEXTS)
    image_only = tiny_clip.encode_records(pics, None)
    assert text_only["image"] is None and image_only["text"] is None
    torch.testing.assert_close(both["text"], text_only["text"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both["image"], image_only["image"], rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        rec = tiny_clip(pixel_values=tiny_clip.preprocess(pics), text_inputs=tiny_clip.tokenize(TEXTS), im_wt=0.3)["record_embeds"]
    torch.testing.assert_close(record_embedding(both["image"], both["text"], 0.3), rec, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="needs images"):
        tiny_clip(text_inputs=tiny_clip.tokenize(TEXTS), im_wt=0.5)
    assert tiny_clip(text_inputs=tiny_clip.tokenize(TEXTS), im_wt=0.0)["record_embeds"].shape == (4, 24)


@pytest.mark.slow
def test_assembled_minilm_efficientnet(minilm_path):
    from sentence_transformers import SentenceTransformer

    from capcse.models.image import efficientnet_lite0

    st = SentenceTransformer(str(minilm_path), device="cpu")
    dual = DualEncoder.assemble(st, efficientnet_lite0(pretrained=False), projection_dim=16, seed=0)
    dual.train()
    pics = _pictures()
    out = dual(pixel_values=dual.preprocess(pics), text_inputs=dual.tokenize(TEXTS))
    assert out["image_embeds"].shape == out["text_embeds"].shape == out["record_embeds"].shape == (4, 16)
    loss = CLIPLoss()(out["image_embeds"], out["text_embeds"], logit_scale=out["logit_scale"]) + SupConLoss()(out["record_embeds"], torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert dual.text_proj.weight.grad is not None and dual.image_proj.weight.grad is not None
    assert dual.logit_scale.grad is not None
    assert st[0].auto_model.embeddings.word_embeddings.weight.grad is not None  # the text tower is trained too
    # text tower = projection of the sentence-transformers embedding
    dual.eval()
    with torch.no_grad():
        ref = F.normalize(dual.text_proj(st.encode(TEXTS, convert_to_tensor=True)), dim=-1)
    torch.testing.assert_close(dual.encode_records(None, TEXTS)["text"], ref, rtol=1e-4, atol=1e-5)


def test_from_clip_loads_a_saved_checkpoint(tiny_clip, tmp_path):
    tiny_clip.clip.save_pretrained(tmp_path)
    tiny_clip.tokenizer.save_pretrained(tmp_path)
    tiny_clip.image_processor.save_pretrained(tmp_path)
    again = DualEncoder.from_clip(str(tmp_path))
    pics = _pictures(2)
    a = tiny_clip.encode_records(pics, TEXTS[:2])
    b = again.encode_records(pics, TEXTS[:2])
    torch.testing.assert_close(a["image"], b["image"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a["text"], b["text"], rtol=1e-4, atol=1e-5)
