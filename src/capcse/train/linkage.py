"""CLIPPINGS training on frozen towers: projection heads trained with the transformers Trainer.

The image and text towers (e.g. EfficientNet-Lite0 and all-MiniLM-L6-v2) are frozen and their
features computed once (``capcse link embed``); what is trained are the two linear projection heads
into a shared space and the CLIP logit scale:

1. *self-supervised* stage (``clip``): symmetric CLIP InfoNCE on the training split's image-caption
   pairs (no cluster labels), as CLIPPINGS' language-image pre-training;
2. *supervised* stage (``supcon``): SupCon (temperature 0.1) on the pooled record embedding
   ``normalise(im_wt img + (1 - im_wt) txt)`` with the cluster labels, batches of ``m`` records per
   cluster made of hard-negative neighbourhoods re-mined with the current heads at every epoch.

This is a deliberate simplification of the paper (which fine-tunes the whole CLIP model): on CPU it
makes a multi-seed table affordable. The Trainer (not a hand-written loop) runs the optimisation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from capcse.losses.clip import CLIPLoss
from capcse.losses.supcon import SupConLoss
from capcse.models.dual import record_embedding
from capcse.train.samplers import HardNegativeBatchSampler

__all__ = ["ProjectionHeads", "train_heads", "project_embeddings"]


class ProjectionHeads(nn.Module):
    """Linear heads from frozen image / text features into one ``dim``-wide space, plus CLIP's scale."""

    def __init__(self, image_dim: int, text_dim: int, dim: int = 256, temperature: float = 0.07, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.image = nn.Linear(image_dim, dim, bias=False)
        self.text = nn.Linear(text_dim, dim, bias=False)
        with torch.no_grad():  # CLIP's projection init: normal(0, d_in^-0.5)
            for layer in (self.image, self.text):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * layer.in_features**-0.5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))
        self.stage = "clip"
        self.im_wt = 0.5
        self.clip_loss = CLIPLoss(learnable_temperature=False)
        self.supcon = SupConLoss(0.1)

    def embed(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.image(image), dim=-1), F.normalize(self.text(text), dim=-1)

    def forward(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        img, txt = self.embed(image, text)
        if self.stage == "clip":
            loss = self.clip_loss(img, txt, logit_scale=self.logit_scale)
        else:
            loss = self.supcon(record_embedding(img, txt, self.im_wt), labels)
        return {"loss": loss, "image_embeds": img, "text_embeds": txt}


class _Features(Dataset):
    def __init__(self, image, text, labels):
        self.image = torch.as_tensor(image, dtype=torch.float32)
        self.text = torch.as_tensor(text, dtype=torch.float32)
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.image[i], "text": self.text[i], "labels": self.labels[i]}


def _collate(rows):
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def _make_trainer(model, dataset, out_dir: Path, *, epochs: int, lr: float, batch_size: int, seed: int, batch_sampler=None):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class LinkageTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = model(**inputs)
            return (out["loss"], out) if return_outputs else out["loss"]

        def get_train_dataloader(self):
            if batch_sampler is None:
                return super().get_train_dataloader()
            return DataLoader(self.train_dataset, batch_sampler=batch_sampler, collate_fn=_collate)

    class RefreshHardNegatives(TrainerCallback):
        """Re-mine the neighbourhoods with the current heads at the start of every epoch."""

        def on_epoch_begin(self, args, state, control, model=None, **kwargs):
            with torch.no_grad():
                img, txt = model.embed(dataset.image, dataset.text)
                batch_sampler.refresh(record_embedding(img, txt, model.im_wt).numpy())
            batch_sampler.set_epoch(int(state.epoch or 0))

    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch_size,
        weight_decay=0.001, adam_beta2=0.98, adam_epsilon=1e-6, lr_scheduler_type="cosine", warmup_steps=0.05,
        logging_steps=10, save_strategy="no", report_to=[], seed=seed, data_seed=seed, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True,
    )
    callbacks = [RefreshHardNegatives()] if batch_sampler is not None else []
    return LinkageTrainer(model=model, args=args, train_dataset=dataset, data_collator=_collate, callbacks=callbacks)


def train_heads(z: dict, out_dir, *, stages=("clip", "supcon"), seed: int = 0, dim: int = 256, im_wt: float = 0.5,
                clip_epochs: int = 20, clip_lr: float = 1e-3, clip_batch: int = 64, supcon_epochs: int = 20, supcon_lr: float = 5e-4,
                m: int = 3, k: int = 3, supcon_batch: int = 54, log=print) -> ProjectionHeads:
    """Train the heads on the ``train`` split of a feature file (``capcse link embed`` output)."""
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    train = z["split"] == "train"
    _, labels = np.unique(z["cluster_id"][train], return_inverse=True)
    heads = ProjectionHeads(z["image"].shape[1], z["text"].shape[1], dim=dim, seed=seed)
    heads.im_wt = float(im_wt)
    data = _Features(z["image"][train], z["text"][train], labels)
    history = {}
    if "clip" in stages:
        heads.stage = "clip"
        # unlabelled pairs: every record is its own class; no two copies of one picture should share a batch
        # as false negatives more than chance allows, so batches are plain random ones
        trainer = _make_trainer(heads, data, out_dir / "clip", epochs=clip_epochs, lr=clip_lr, batch_size=clip_batch, seed=seed)
        history["clip"] = trainer.train().training_loss
        log(f"clip stage: mean loss {history['clip']:.4f}")
    if "supcon" in stages:
        heads.stage = "supcon"
        sampler = HardNegativeBatchSampler(labels, m=m, k=k, batch_size=supcon_batch, seed=seed)
        trainer = _make_trainer(heads, data, out_dir / "supcon", epochs=supcon_epochs, lr=supcon_lr, batch_size=supcon_batch, seed=seed,
                                batch_sampler=sampler)
        history["supcon"] = trainer.train().training_loss
        log(f"supcon stage: mean loss {history['supcon']:.4f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(heads.state_dict(), out_dir / "heads.pt")
    (out_dir / "heads.json").write_text(json.dumps({"stages": list(stages), "seed": seed, "dim": dim, "im_wt": im_wt, "loss": history}, indent=2))
    return heads


@torch.no_grad()
def project_embeddings(heads: ProjectionHeads, z: dict) -> dict:
    """The feature file with image / text replaced by the heads' normalised projections."""
    img, txt = heads.embed(torch.as_tensor(z["image"], dtype=torch.float32), torch.as_tensor(z["text"], dtype=torch.float32))
    out = dict(z)
    out["image"], out["text"] = img.numpy(), txt.numpy()
    return out
