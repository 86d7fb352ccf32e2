"""Train-time multimodal wrapper: a text encoder plus the projection heads into a shared grounding space.

MCSE (Zhang et al., NAACL 2022, §3; uds-lsv/MCSE ``MLPLayer`` / ``ResNetVisnModel``) and DALR map the
sentence representation and a frozen image feature into a shared space with one head each::

    g(h)  = normalize(tanh(W_t h + b_t))      # text  -> grounding space (proj_dim, 256 in both papers)
    g'(v) = normalize(tanh(W_v v + b_v))      # image -> grounding space

Only the text encoder is kept: :meth:`MultimodalModel.save_text_encoder` writes the plain
sentence-transformers model (loadable like any capcse model); the heads and the image side exist for
training only.

``grounding_input`` chooses what ``g`` reads: ``sentence`` — the sentence embedding the contrastive
loss uses (the only choice for mean-pooled models such as all-MiniLM-L6-v2); ``cls_before_pooler`` —
[CLS] of the last layer *before* the MLP pooler, as MCSE does with its ``cls`` + MLP recipes
(``lang_output.last_hidden_state[:, 0]``), read with a forward hook on the transformer.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from capcse.errors import ConfigError

GROUNDING_INPUTS = ("sentence", "cls_before_pooler")


class ProjectionHead(nn.Module):
    """``normalize(act(W x + b))`` — MCSE's ``MLPLayer`` (dense + tanh) followed by L2 normalisation."""

    def __init__(self, in_dim: int, out_dim: int = 256, activation: str = "tanh", normalize: bool = True):
        super().__init__()
        acts = {"tanh": nn.Tanh(), "relu": nn.ReLU(), "identity": nn.Identity()}
        if activation not in acts:
            raise ConfigError(f"projection activation must be one of {sorted(acts)}, got {activation!r}")
        self.dense = nn.Linear(int(in_dim), int(out_dim))
        self.activation = acts[activation]
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.dense(x))
        return F.normalize(y, dim=-1) if self.normalize else y


class MultimodalModel(nn.Module):
    """A SentenceTransformer (``model``, trained and saved) + ``text_head`` and ``image_head`` (train only).

    ``forward(features)`` runs the text encoder once and returns ``{"sentence": [B, D], "grounding": [B, P]}``
    (``grounding`` = ``text_head`` of the ``grounding_input``); :meth:`project_images` maps frozen
    image features [B, F] to [B, P].
    """

    def __init__(self, model, image_dim: int, proj_dim: int = 256, grounding_input: str = "sentence",
                 activation: str = "tanh"):
        super().__init__()
        if grounding_input not in GROUNDING_INPUTS:
            raise ConfigError(f"grounding_input must be one of {GROUNDING_INPUTS}, got {grounding_input!r}")
        self.model = model
        self.grounding_input = grounding_input
        text_dim = self.sentence_dim if grounding_input == "sentence" else self.hidden_size
        self.text_head = ProjectionHead(text_dim, proj_dim, activation)
        self.image_head = ProjectionHead(image_dim, proj_dim, activation)
        self._tapped: torch.Tensor | None = None
        self._hook = None
        if grounding_input == "cls_before_pooler":
            self._hook = self._last_hidden_module().register_forward_hook(self._tap_cls)

    @property
    def hidden_size(self) -> int:
        return int(self.model[0].auto_model.config.hidden_size)

    @property
    def sentence_dim(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getter()
        return int(dim) if dim else self.hidden_size

    def _last_hidden_module(self) -> nn.Module:
        """The submodule whose output is the last layer's hidden states (BERT/RoBERTa ``encoder``,
        DistilBERT ``transformer``). sentence-transformers calls the model's ``forward`` directly, so a
        hook on the top-level model would never fire; the encoder stack is called as a module."""
        hf = self.model[0].auto_model
        for name in ("encoder", "transformer"):
            sub = getattr(hf, name, None)
            if isinstance(sub, nn.Module):
                return sub
        raise ConfigError(f"grounding_input 'cls_before_pooler' needs a BERT-like encoder stack; "
                          f"{type(hf).__name__} has none (use grounding_input: sentence)")

    def _tap_cls(self, module, args, output) -> None:
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        self._tapped = hidden[:, 0]

    def embed(self, features: dict[str, Any], runner: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(sentence embedding [B, D], grounding-head input [B, D or H]) from one forward pass.

        ``runner`` is what to call instead of ``model`` itself: under DDP the Trainer hands the loss the
        ``DistributedDataParallel`` wrapper, and the forward must go through it for DDP to average the
        encoder's gradients."""
        self._tapped = None
        sentence = (runner if runner is not None else self.model)(features)["sentence_embedding"]
        if self.grounding_input == "sentence":
            return sentence, sentence
        if self._tapped is None:
            raise RuntimeError("the [CLS] hook did not fire during the forward pass")
        source, self._tapped = self._tapped, None
        return sentence, source

    def forward(self, features: dict[str, Any], runner: nn.Module | None = None) -> dict[str, torch.Tensor]:
        sentence, source = self.embed(features, runner)
        return {"sentence": sentence, "grounding": self.text_head(source)}

    def project_images(self, image_features: torch.Tensor) -> torch.Tensor:
        dtype = self.image_head.dense.weight.dtype
        return self.image_head(image_features.to(device=self.image_head.dense.weight.device, dtype=dtype))

    def heads_state_dict(self) -> dict[str, torch.Tensor]:
        return {f"text_head.{k}": v for k, v in self.text_head.state_dict().items()} | \
               {f"image_head.{k}": v for k, v in self.image_head.state_dict().items()}

    def save_text_encoder(self, path: str | os.PathLike) -> None:
        """Save only the text encoder (a plain sentence-transformers folder, safetensors)."""
        self.model.save(str(path), safe_serialization=True)

    def save_heads(self, path: str | os.PathLike) -> None:
        """The train-only heads, for inspection or cross-modal retrieval experiments (safetensors)."""
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in self.heads_state_dict().items()}, str(path))

    def remove_hooks(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
