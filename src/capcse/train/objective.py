"""The glue between a SentenceTransformer, a loss over embeddings and the sentence-transformers Trainer.

:class:`SimCSEObjective` is what the Trainer calls with the collated columns. It embeds all columns in
**one** forward pass — SimCSE's ``[2N]`` (unsupervised: the same sentences twice, so dropout makes
the two views) or ``[3N]`` (supervised: anchor, entailment, contradiction) concatenated batch —
instead of one forward per column, then applies :class:`capcse.losses.simcse.SimCSELoss`. Under
``torchrun``/``accelerate`` the candidates are gathered from every process with gradients
(``all_gather_with_grad``), so in-batch negatives span the global batch.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from capcse.losses.simcse import SimCSELoss
from capcse.models.heads import MLMHead


def concat_features(columns: list[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Stack per-column tokenised features into one batch, right-padding to the longest column."""
    longest = max(c["input_ids"].size(1) for c in columns)
    out: dict[str, Any] = {}
    for key, value in columns[0].items():
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            out[key] = value  # e.g. 'modality': the same for every column
            continue
        pad_value = pad_token_id if key == "input_ids" else 0
        parts = [F.pad(c[key], (0, longest - c[key].size(1)), value=pad_value) for c in columns]
        out[key] = torch.cat(parts, dim=0)
    return out


def distributed_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    from sentence_transformers.util import all_gather_with_grad

    return all_gather_with_grad(x)


class SimCSEObjective(nn.Module):
    """Unsupervised (1 column) or supervised (2–3 columns: anchor, positive[, hard negative]) SimCSE.

    ``mlm_weight > 0`` adds SimCSE's auxiliary MLM loss (a second forward of the masked batch through
    the encoder, then a new :class:`MLMHead`): ``loss = l_contrastive + mlm_weight * l_mlm``.
    """

    def __init__(self, model, loss: SimCSELoss, *, mlm_weight: float = 0.0, mlm_probability: float = 0.15,
                 gather_across_devices: bool = True):
        super().__init__()
        self.model = model
        self.loss = loss
        self.gather_across_devices = gather_across_devices
        self.mlm_weight = float(mlm_weight)
        self.mlm_head = None
        if self.mlm_weight > 0:
            from transformers import DataCollatorForLanguageModeling

            cfg = model[0].auto_model.config
            self.mlm_head = MLMHead(cfg.hidden_size, cfg.vocab_size, getattr(cfg, "layer_norm_eps", 1e-12))
            self._masker = DataCollatorForLanguageModeling(model.tokenizer, mlm_probability=mlm_probability)

    @property
    def pad_token_id(self) -> int:
        return self.model.tokenizer.pad_token_id or 0

    def columns(self, sentence_features: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        cols = list(sentence_features)
        if len(cols) == 1:  # unsupervised: the same sentences twice -> two dropout views
            cols = [cols[0], cols[0]]
        if not 2 <= len(cols) <= 3:
            raise ValueError(f"SimCSE takes 1, 2 or 3 text columns, got {len(cols)}")
        return cols

    def embed(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model(batch)["sentence_embedding"]

    def contrastive_loss(self, views: list[torch.Tensor]) -> torch.Tensor:
        anchors, positives = views[0], views[1]
        negatives = views[2] if len(views) > 2 else None
        offset = 0
        rank, world = distributed_world()
        if self.gather_across_devices and world > 1:
            positives = gather_with_grad(positives)
            negatives = gather_with_grad(negatives) if negatives is not None else None
            offset = rank * anchors.size(0)
        return self.loss(anchors, positives, negatives, offset=offset)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: torch.Tensor | None = None) -> torch.Tensor:
        cols = self.columns(sentence_features)
        n = cols[0]["input_ids"].size(0)
        batch = concat_features(cols, self.pad_token_id)
        views = list(self.embed(batch).split(n))
        loss = self.contrastive_loss(views)
        if self.mlm_head is not None:
            loss = loss + self.mlm_weight * self.mlm_loss(batch)
        return loss

    def mlm_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        input_ids = batch["input_ids"].detach().cpu().clone()
        special = torch.tensor([self.model.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
                                for ids in input_ids.tolist()], dtype=torch.bool)
        masked, labels = self._masker.torch_mask_tokens(input_ids, special_tokens_mask=special)
        device = batch["input_ids"].device
        inputs = {"input_ids": masked.to(device), "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        hidden = self.model[0].auto_model(**inputs).last_hidden_state
        logits = self.mlm_head(hidden)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.to(device).view(-1),
                               ignore_index=-100)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperature": self.loss.temperature, "hard_negative_weight": self.loss.hard_negative_weight,
                "mlm_weight": self.mlm_weight, "gather_across_devices": self.gather_across_devices}

    @property
    def citation(self) -> str:
        return ("@inproceedings{gao2021simcse, title={SimCSE: Simple Contrastive Learning of Sentence Embeddings}, "
                "author={Gao, Tianyu and Yao, Xingcheng and Chen, Danqi}, booktitle={EMNLP}, year={2021}}")
