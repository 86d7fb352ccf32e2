"""Captioner: BLIP semantics (prompt, lengths, decoding defaults) and other architectures."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from capcse.caption.generate import Captioner, DecodingConfig, batch_seed
from capcse.errors import CapcseError


def _pixels(cap: Captioner, paths) -> torch.Tensor:
    return torch.stack([cap.transform(Image.open(p).convert("RGB")) for p in paths])


def test_decoding_config_follows_blip_defaults():
    nucleus = DecodingConfig()
    kw = nucleus.generate_kwargs(prefix_len=4)
    assert kw["do_sample"] and kw["top_p"] == 0.9 and kw["top_k"] == 50 and kw["repetition_penalty"] == 1.1
    assert kw["min_length"] == 5 and kw["max_length"] == 20 and kw["num_return_sequences"] == 1
    beam = DecodingConfig(method="beam").generate_kwargs(4)
    assert beam["num_beams"] == 3 and not beam["do_sample"] and beam["repetition_penalty"] == 1.0
    generic = DecodingConfig().generate_kwargs(prefix_len=4, length_in_new_tokens=True)
    assert generic["max_new_tokens"] == 16 and generic["min_new_tokens"] == 1
    fixed = DecodingConfig(max_new_tokens=7, min_new_tokens=7).generate_kwargs(4)
    assert fixed["max_new_tokens"] == 7 and "max_length" not in fixed
    for bad in (dict(method="topk"), dict(top_p=0), dict(min_length=30), dict(method="greedy", num_captions=2),
                dict(method="beam", num_captions=4), dict(temperature=0)):
        with pytest.raises(CapcseError):
            DecodingConfig(**bad)


def test_batch_seed_depends_on_global_position_only():
    assert batch_seed(0, "00001.tar", 32) == batch_seed(0, "00001.tar", 32)
    assert len({batch_seed(0, "p", 0), batch_seed(1, "p", 0), batch_seed(0, "q", 0), batch_seed(0, "p", 16)}) == 4


def test_blip_prompt_and_lengths_match_the_model_card_usage(tiny_blip, flickr_images):
    """Our BLIP path == BlipProcessor(images, text=prompt) + model.generate, as the HF model card shows."""
    from transformers import AutoProcessor, BlipForConditionalGeneration

    cap = Captioner(str(tiny_blip), device="cpu")
    assert cap.adapter == "blip"
    dec = DecodingConfig(prompt="a picture of", min_length=8, max_length=12)
    paths = flickr_images[:3]
    ours = cap.caption(_pixels(cap, paths), dec, seed=123)

    proc = AutoProcessor.from_pretrained(tiny_blip)
    model = BlipForConditionalGeneration.from_pretrained(tiny_blip).eval()
    inputs = proc(images=[Image.open(p).convert("RGB") for p in paths], text=["a picture of"] * 3,
                  return_tensors="pt")
    torch.manual_seed(123)
    with torch.inference_mode():
        ref = model.generate(**inputs, do_sample=True, top_p=0.9, top_k=50, temperature=1.0,
                             repetition_penalty=1.1, min_length=8, max_length=12)
    # BLIP lengths count [DEC] + the 3 prompt tokens: every sequence is 8..12 tokens long
    assert ref.shape[1] <= 12 and ref[0, 0].item() == proc.tokenizer.bos_token_id
    assert ref[:, 1:4].tolist() == [proc.tokenizer("a picture of", add_special_tokens=False).input_ids] * 3
    expected = []
    for row in ref:
        full = proc.tokenizer.decode(row, skip_special_tokens=True)
        assert full.startswith("a picture of")
        expected.append([" ".join(full[len("a picture of"):].split())])
    assert ours == expected
    assert all(c[0] and not c[0].startswith("a picture of") for c in ours)


def test_blip_beam_and_greedy_and_several_captions(tiny_blip, flickr_images):
    cap = Captioner(str(tiny_blip), device="cpu")
    pix = _pixels(cap, flickr_images[:2])
    beam = cap.caption(pix, DecodingConfig(method="beam", num_captions=2, max_length=10), seed=1)
    assert [len(x) for x in beam] == [2, 2]
    greedy1 = cap.caption(pix, DecodingConfig(method="greedy", max_length=10), seed=1)
    greedy2 = cap.caption(pix, DecodingConfig(method="greedy", max_length=10), seed=999)
    assert greedy1 == greedy2  # no randomness in greedy decoding
    sampled = cap.caption(pix, DecodingConfig(num_captions=3, max_length=10), seed=5)
    assert [len(x) for x in sampled] == [3, 3]
    assert cap.caption(pix, DecodingConfig(num_captions=3, max_length=10), seed=5) == sampled


def test_bf16_autocast_runs(tiny_blip, flickr_images):
    cap = Captioner(str(tiny_blip), device="cpu", autocast="bf16")
    out = cap.caption(_pixels(cap, flickr_images[:2]), DecodingConfig(max_new_tokens=4, min_new_tokens=4), seed=0)
    assert len(out) == 2 and all(len(c[0].split()) >= 1 for c in out)


def test_vision_encoder_decoder_model(tiny_vit_bert, flickr_images):
    """An image processor + tokenizer pair (no processor class), prompt as decoder_input_ids."""
    from transformers import VisionEncoderDecoderModel

    cap = Captioner(str(tiny_vit_bert), device="cpu")
    assert cap.adapter == "encoder-decoder"
    pix = _pixels(cap, flickr_images[:2])
    ours = cap.caption(pix, DecodingConfig(prompt="a picture of", max_length=9), seed=7)
    model = VisionEncoderDecoderModel.from_pretrained(tiny_vit_bert).eval()
    start = [cap.tokenizer.cls_token_id] + cap.tokenizer("a picture of", add_special_tokens=False).input_ids
    torch.manual_seed(7)
    with torch.inference_mode():
        ref = model.generate(pixel_values=pix, decoder_input_ids=torch.tensor([start] * 2), do_sample=True,
                             top_p=0.9, top_k=50, repetition_penalty=1.1, min_length=5, max_length=9)
    assert ref.shape[1] <= 9
    assert ours == [[" ".join(cap.tokenizer.decode(r, skip_special_tokens=True)[len("a picture of"):].split())]
                    for r in ref]


def test_git_model_and_generic_adapter(tiny_git, flickr_images):
    cap = Captioner(str(tiny_git), device="cpu")
    assert cap.adapter == "git"
    pix = _pixels(cap, flickr_images[:2])
    with_prompt = cap.caption(pix, DecodingConfig(prompt="a picture of", max_length=10), seed=3)
    assert len(with_prompt) == 2 and all(c[0] for c in with_prompt)
    # the generic adapter (pixel_values only) gives the same as the GIT adapter without a prompt
    generic = Captioner(str(tiny_git), device="cpu", adapter="generic")
    a = cap.caption(pix, DecodingConfig(method="greedy", max_new_tokens=6), seed=0)
    b = generic.caption(pix, DecodingConfig(method="greedy", max_new_tokens=6), seed=0)
    assert a == b


def test_not_a_captioning_model_is_a_clear_error(minilm_path):
    with pytest.raises(CapcseError, match="not an image-to-text model"):
        Captioner(str(minilm_path), device="cpu")


def test_sdpa_vision_attention_equals_blip_attention(tiny_blip, flickr_images):
    """capcse.caption.attention: the fused-kernel forward computes BlipAttention's equation."""
    from transformers import BlipForConditionalGeneration

    from capcse.caption.attention import use_sdpa_vision_attention

    stock = BlipForConditionalGeneration.from_pretrained(str(tiny_blip)).eval()
    torch.manual_seed(0)  # BLIP initialises near zero (uniform attention): make the weights matter
    with torch.no_grad():
        for p in stock.vision_model.parameters():
            p.normal_(0.0, 0.2)
    fused = BlipForConditionalGeneration.from_pretrained(str(tiny_blip)).eval()
    fused.load_state_dict(stock.state_dict())
    assert use_sdpa_vision_attention(fused) == stock.config.vision_config.num_hidden_layers
    cap = Captioner(str(tiny_blip), device="cpu", attention="eager")
    pixels = _pixels(cap, flickr_images[:3])
    x = torch.randn(3, 17, stock.config.vision_config.hidden_size)
    with torch.inference_mode():
        for i in (0, -1):  # one attention module on its own
            ref, weights = stock.vision_model.encoder.layers[i].self_attn(x)
            got, none = fused.vision_model.encoder.layers[i].self_attn(x)
            assert weights is not None and none is None and ref.abs().mean() > 0.01
            assert weights.std() > 0.01  # not uniform attention
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
        a = stock.vision_model(pixel_values=pixels).last_hidden_state  # the whole tower
        b = fused.vision_model(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * a.abs().max().item())
    # the Captioner's default is the fused forward; greedy captions agree with transformers' own attention
    greedy = DecodingConfig(method="greedy", max_new_tokens=6, min_new_tokens=6)
    sdpa = Captioner(str(tiny_blip), device="cpu")
    assert sdpa.attention == "sdpa" and cap.attention == "eager"
    assert sdpa.caption(pixels, greedy) == cap.caption(pixels, greedy)
    with pytest.raises(CapcseError, match="attention"):
        Captioner(str(tiny_blip), device="cpu", attention="flash")


def test_bf16_weights_run(tiny_blip, flickr_images):
    cap = Captioner(str(tiny_blip), device="cpu", dtype="bf16")
    assert next(cap.model.parameters()).dtype == torch.bfloat16
    out = cap.caption(_pixels(cap, flickr_images[:2]), DecodingConfig(max_new_tokens=4, min_new_tokens=4), seed=0)
    assert len(out) == 2 and all(len(c[0].split()) >= 1 for c in out)
