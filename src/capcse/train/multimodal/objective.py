"""The MCSE / DALR objective over mixed batches: :class:`MultimodalObjective` (its terms: :mod:`capcse.train.multimodal`)."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from capcse.errors import ConfigError
from capcse.losses.dalr import (AngularMarginInfoNCE, SoftLabelAlignmentLoss, angular_margin_cosine, cosine_matrix,
                                false_negative_mask)
from capcse.losses.grounding import MCSEGroundingLoss
from capcse.losses.ranking import DistributionAlignmentLoss, ListMLELoss, ListNetLoss, RankingConsistencyLoss
from capcse.train.multimodal.config import MULTIMODAL_LOSSES, TERMS, MultimodalConfig
from capcse.train.multimodal.data import TextLookup
from capcse.train.multimodal.teachers import TeacherBank
from capcse.train.objective import (average_gradients_across_processes, concat_features, distributed_world,
                                    gather_labels, gather_rows)


class MultimodalObjective(nn.Module):
    """MCSE / DALR over mixed batches (see :mod:`capcse.train.multimodal`). ``forward(features, labels)`` returns
    the dict of weighted loss terms; the Trainer logs each and sums them."""

    def __init__(self, model, method: str, cfg: MultimodalConfig, *, temperature: float,
                 image_features: np.ndarray, pair_image_rows: np.ndarray, texts: "TextLookup",
                 teacher: TeacherBank | None = None, gather_across_devices: bool = True):
        super().__init__()
        from capcse.models.multimodal import MultimodalModel

        if method not in MULTIMODAL_LOSSES:
            raise ConfigError(f"unknown multimodal method {method!r}")
        self.model = model
        self.method = method
        self.cfg = cfg
        self.weights = dict(cfg.weights)
        self.mm = MultimodalModel(model, image_dim=int(image_features.shape[1]), proj_dim=cfg.proj_dim,
                                  grounding_input=cfg.grounding_input)
        self.image_features = image_features
        self.pair_image_rows = np.asarray(pair_image_rows, dtype=np.int64)
        self.texts = texts
        self.teacher = teacher
        self.temperature = float(temperature)
        self.text_loss = AngularMarginInfoNCE(temperature, cfg.margins["text"])
        if method == "mcse":
            self.grounding_loss = MCSEGroundingLoss(cfg.temperature_vl)
        else:
            self.grounding_loss = AngularMarginInfoNCE(cfg.temperature_vl, cfg.margins["cross"])
        st = cfg.soft_label_temperatures
        # DALR's students of the distillation terms carry the text margin (ArcSimilarity(temp, margin1))
        self.student_margin = cfg.margins["text"] if cfg.student_margin else 0.0
        self.soft_label_loss = SoftLabelAlignmentLoss(st["student"], st["target"], margin=self.student_margin)
        self.global_loss = DistributionAlignmentLoss(st["student"], st["target"])
        self.rank_loss = ListMLELoss(form=cfg.listmle) if cfg.ranking == "listmle" else ListNetLoss()
        self.consistency_loss = RankingConsistencyLoss()
        self.steps = {"text": 0, "pairs": 0}
        self.gather_across_devices = bool(gather_across_devices)
        self._ddp_hooks = False
        self._pad_token_id = model.tokenizer.pad_token_id or 0  # read now: self.model becomes the DDP wrapper

    @property
    def pad_token_id(self) -> int:
        return self._pad_token_id

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """Without the second path to the text encoder (``mm.model`` is ``model``): checkpoints of the
        objective's own weights (the projection heads) stay small and never shadow the model."""
        sd = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        for key in [k for k in sd if k.startswith(prefix + "mm.model.")]:
            del sd[key]
        return sd

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        cols = list(sentence_features)
        if len(cols) != 1:
            raise ValueError(f"multimodal objectives take one text column, got {len(cols)}")
        if labels is None:
            raise ValueError("multimodal batches need the 'label' column (row kind and index)")
        n = cols[0]["input_ids"].size(0)
        distributed = distributed_world()[1] > 1
        if distributed and not self._ddp_hooks:
            # The heads are outside the DDP-wrapped encoder: start them from rank 0's values and average
            # their gradients, as DDP does for the encoder (mm.model, which is left to DDP).
            self._ddp_hooks = all([average_gradients_across_processes(self.mm.text_head),
                                   average_gradients_across_processes(self.mm.image_head)])
        # two dropout views, one forward, through self.model (the DDP wrapper under multi-process training)
        out = self.mm(concat_features([cols[0], cols[0]], self.pad_token_id), runner=self.model)
        z1, z2 = out["sentence"].split(n)
        g1, g2 = out["grounding"].split(n)
        labels = labels.view(-1)
        if distributed and self.gather_across_devices:
            # Every process computes the loss of the whole global batch (all anchors, all in-batch
            # negatives, all images). The gather's backward sums the W identical losses' gradients
            # into this process's rows and DDP / the hooks divide by W: the full-batch gradient.
            (z1, z2, g1, g2), _ = gather_rows([z1, z2, g1, g2])
            labels = gather_labels(labels.to(z1.device))
        labels = labels.cpu()
        is_pair = labels < 0
        if bool(is_pair.any()) and not bool(is_pair.all()):
            raise ValueError("a batch mixes text-only rows and image-caption rows; use MixedModalityBatchSampler")
        pair_batch = bool(is_pair.all())
        self.steps["pairs" if pair_batch else "text"] += 1
        device = z1.device
        zero = z1.new_zeros(())
        w = self.weights
        terms = {t: zero for t in TERMS}
        terms["text"] = w["text"] * self.text_loss(z1, z2)
        if w["consistency"] > 0:
            s12 = cosine_matrix(z1, z2) / self.temperature
            terms["consistency"] = w["consistency"] * self.consistency_loss(s12, s12.T)

        teacher_sims = teacher_targets = None   # ranking target (mixed similarities), KL targets
        wants_teacher = pair_batch or self.cfg.rank_on_text_batches
        if self.teacher is not None and wants_teacher:
            texts = self.texts(labels.tolist())
            teacher_sims = self.teacher.similarities(texts, device=device)
            teacher_targets = teacher_sims
            if self.cfg.teacher_similarity == "features" and len(self.teacher.encoders) > 1:
                teacher_targets = self.teacher.similarities(texts, device=device, mix="features")
        if teacher_sims is not None:
            student = angular_margin_cosine(cosine_matrix(z1, z2), self.student_margin)
            if w["global_alignment"] > 0:
                terms["global_alignment"] = w["global_alignment"] * self.global_loss(student, teacher_targets)
            if w["ranking"] > 0:
                terms["ranking"] = w["ranking"] * self.rank_loss(student / self.temperature,
                                                                  teacher_sims / self.cfg.teacher_temperature)
        if not pair_batch:
            return terms

        rows = self.pair_image_rows[(-labels - 1).numpy()]
        feats = torch.from_numpy(np.asarray(self.image_features[rows], dtype=np.float32)).to(device)
        images = self.mm.project_images(feats)
        image_sims = cosine_matrix(feats, feats)
        fn = self.cfg.false_negatives
        ignore = false_negative_mask(image_sims, fn.get("image_threshold"),
                                     ids=torch.from_numpy(rows) if fn.get("same_image", True) else None)
        if fn.get("teacher_threshold") is not None and teacher_sims is not None:
            extra = false_negative_mask(teacher_sims, fn["teacher_threshold"])
            ignore = extra if ignore is None else ignore | extra
        if ignore is not None:
            ignore = ignore.to(device)
        views = torch.stack([g1, g2])
        if w["grounding"] > 0:
            if self.method == "mcse":
                terms["grounding"] = w["grounding"] * self.grounding_loss(views, images, ignore=ignore)
            else:
                terms["grounding"] = w["grounding"] * self.grounding_loss(views, images, soft_labels=image_sims,
                                                                          ignore=ignore)
        if w["soft_label"] > 0 and teacher_sims is not None:
            terms["soft_label"] = w["soft_label"] * self.soft_label_loss(g1, images, teacher_targets, image_sims)
        return terms

    def get_config_dict(self) -> dict[str, Any]:
        return {"method": self.method, "temperature": self.temperature, **self.cfg.to_dict()}

    @property
    def citation(self) -> str:
        if self.method == "mcse":
            return ("@inproceedings{zhang2022mcse, title={MCSE: Multimodal Contrastive Learning of Sentence "
                    "Embeddings}, author={Zhang, Miaoran and Mosbach, Marius and Adelani, David and Hedderich, "
                    "Michael and Klakow, Dietrich}, booktitle={NAACL}, year={2022}}")
        return ("@inproceedings{he2025dalr, title={DALR: Dual-level Alignment Learning for Multimodal Sentence "
                "Representation Learning}, author={He, Kang and Ding, Yuzhe and Wang, Haining and Li, Fei and "
                "Teng, Chong and Ji, Donghong}, booktitle={Findings of ACL}, year={2025}}")
