"""The CLIPPINGS bi-encoder: an image tower and a text tower in one embedding space.

A record (image + caption) is embedded as (Arora et al. 2023, CLIPPINGS, Sec. 3)::

    e = normalise( im_wt * normalise(f_img(image)) + (1 - im_wt) * normalise(f_txt(text)) )

``im_wt = 1`` is the visual-only record embedding, ``0`` the language-only one (the paper's ablation
rows), and 0.5 the default multimodal mean. Two ways to build one:

* :meth:`DualEncoder.from_clip`: a Hugging Face ``CLIPModel`` (by id, path, or instance; default
  ``openai/clip-vit-base-patch32``), its own projections and ``logit_scale``;
* :meth:`DualEncoder.assemble`: any text encoder (a ``sentence_transformers.SentenceTransformer``,
  e.g. ``capcse.models.encoder.load_encoder(name).model``; offline default all-MiniLM-L6-v2) and any
  :class:`~capcse.models.image.ImageEncoder` (offline default EfficientNet-Lite0), each followed by a
  linear projection head into a shared ``projection_dim`` space, plus a learnable ``logit_scale``.

``forward(pixel_values=..., text_inputs=...)`` returns the normalised image and text embeddings and
the record embedding (with gradients, for the CLIP and SupCon losses); :meth:`encode_records` embeds
PIL images and strings for inference.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DualEncoder", "record_embedding", "MODES"]

MODES = {"multimodal": None, "image": 1.0, "text": 0.0}


def record_embedding(image_embeds: torch.Tensor | None, text_embeds: torch.Tensor | None, im_wt: float) -> torch.Tensor:
    """``normalise(im_wt * img/|img| + (1 - im_wt) * txt/|txt|)``; a missing side needs its weight 0."""
    if not 0.0 <= im_wt <= 1.0:
        raise ValueError(f"im_wt must be in [0, 1], got {im_wt}")
    if im_wt == 1.0:
        return F.normalize(image_embeds, dim=-1)
    if im_wt == 0.0:
        return F.normalize(text_embeds, dim=-1)
    mixed = im_wt * F.normalize(image_embeds, dim=-1) + (1.0 - im_wt) * F.normalize(text_embeds, dim=-1)
    return F.normalize(mixed, dim=-1)


def _pooled(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class DualEncoder(nn.Module):
    """Image + text towers with projections; see the module docstring."""

    def __init__(self, kind: str, *, clip=None, tokenizer=None, image_processor=None, text_model=None, image_model=None,
                 text_proj: nn.Module | None = None, image_proj: nn.Module | None = None, logit_scale: nn.Parameter | None = None,
                 im_wt: float = 0.5, max_length: int = 77):
        super().__init__()
        self.kind = kind
        self.clip = clip
        self.text_model = text_model
        self.image_model = image_model
        self.text_proj = text_proj
        self.image_proj = image_proj
        self._own_scale = logit_scale
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.im_wt = float(im_wt)
        self.max_length = int(max_length)

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_clip(cls, model="openai/clip-vit-base-patch32", *, tokenizer=None, image_processor=None, im_wt: float = 0.5) -> "DualEncoder":
        import transformers

        if isinstance(model, (str, os.PathLike)):
            name = str(model)
            model = transformers.CLIPModel.from_pretrained(name)
            tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(name)
            image_processor = image_processor or transformers.AutoImageProcessor.from_pretrained(name, use_fast=False)
        if tokenizer is None or image_processor is None:
            raise ValueError("a CLIPModel instance needs its tokenizer and image_processor")
        return cls("clip", clip=model, tokenizer=tokenizer, image_processor=image_processor, im_wt=im_wt,
                   max_length=min(77, model.config.text_config.max_position_embeddings))

    @classmethod
    def assemble(cls, text_model, image_model, *, projection_dim: int | None = 256, temperature: float = 0.07,
                 im_wt: float = 0.5, seed: int | None = None) -> "DualEncoder":
        """A SentenceTransformer text tower + an ImageEncoder, with linear projections to ``projection_dim``
        (``None``: no projection; both towers must then share a dimension)."""
        get_dim = getattr(text_model, "get_embedding_dimension", None) or text_model.get_sentence_embedding_dimension
        text_dim = get_dim()
        if projection_dim is None:
            if text_dim != image_model.dim:
                raise ValueError(f"without projections the towers must agree: text {text_dim} vs image {image_model.dim}")
            text_proj, image_proj = nn.Identity(), nn.Identity()
        else:
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            text_proj, image_proj = nn.Linear(text_dim, projection_dim, bias=False), nn.Linear(image_model.dim, projection_dim, bias=False)
            for layer in (text_proj, image_proj):  # CLIP's projection init: normal(0, d_in^-0.5)
                with torch.no_grad():
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * layer.in_features**-0.5)
        scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        return cls("assembled", text_model=text_model, image_model=image_model, text_proj=text_proj, image_proj=image_proj,
                   logit_scale=scale, im_wt=im_wt, max_length=text_model.max_seq_length or 256)

    # ---- towers ------------------------------------------------------------------------------
    @property
    def logit_scale(self) -> nn.Parameter:
        return self.clip.logit_scale if self.kind == "clip" else self._own_scale

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> dict:
        if self.kind == "clip":
            return dict(self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"))
        prep = getattr(self.text_model, "preprocess", None) or self.text_model.tokenize  # sentence-transformers >= 6 / older
        return dict(prep(list(texts)))

    def preprocess(self, images: Sequence) -> torch.Tensor:
        if self.kind == "clip":
            return self.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        return self.image_model.preprocess(images)

    def text_features(self, text_inputs: dict) -> torch.Tensor:
        text_inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in text_inputs.items()}
        if self.kind == "clip":
            keep = {k: v for k, v in text_inputs.items() if k in ("input_ids", "attention_mask")}
            return _pooled(self.clip.get_text_features(**keep))
        return self.text_proj(self.text_model(text_inputs)["sentence_embedding"])

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixel_values = pixel_values.to(self.device)
        if self.kind == "clip":
            return _pooled(self.clip.get_image_features(pixel_values=pixel_values))
        return self.image_proj(self.image_model(pixel_values))

    def forward(self, pixel_values: torch.Tensor | None = None, text_inputs: dict | None = None, im_wt: float | None = None) -> dict:
        """Normalised ``image_embeds`` / ``text_embeds`` (None for a missing side) and ``record_embeds``."""
        im_wt = self.im_wt if im_wt is None else float(im_wt)
        img = F.normalize(self.image_features(pixel_values), dim=-1) if pixel_values is not None else None
        txt = F.normalize(self.text_features(text_inputs), dim=-1) if text_inputs is not None else None
        if (img is None and im_wt > 0) or (txt is None and im_wt < 1):
            raise ValueError(f"im_wt={im_wt} needs {'images' if img is None else 'texts'}")
        return {"image_embeds": img, "text_embeds": txt, "record_embeds": record_embedding(img, txt, im_wt), "logit_scale": self.logit_scale}

    @torch.inference_mode()
    def encode_records(self, images: Sequence | None, texts: Sequence[str] | None, *, batch_size: int = 32) -> dict:
        """Normalised image and text embeddings of records (float32, CPU); mix with ``record_embedding``.

        Pass ``images=None`` or ``texts=None`` to embed one side only (text-only / image-only modes).
        """
        was_training = self.training
        self.eval()
        n = len(images) if images is not None else len(texts)
        out = {"image": [], "text": []}
        try:
            for s in range(0, n, batch_size):
                if images is not None:
                    out["image"].append(F.normalize(self.image_features(self.preprocess(images[s : s + batch_size])), dim=-1).float().cpu())
                if texts is not None:
                    out["text"].append(F.normalize(self.text_features(self.tokenize(texts[s : s + batch_size])), dim=-1).float().cpu())
        finally:
            self.train(was_training)
        return {k: (torch.cat(v) if v else None) for k, v in out.items()}
