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

Checkpoint selection (``select_best=True``, the CLIPPINGS recipes), as the original ``train_clippings.py``:
the state before each stage is scored, then the state after every epoch; the best one is kept and
restored at the end. SupCon stage: the validation ARI of the pooled embedding at ``im_wt`` with the
threshold tuned on the same validation records (the original's ``val_bienc_clustering``, which searched
the threshold with 500 TPE trials in U(0.01, 0.4); here it is the exact optimum). CLIP stage: the mean
symmetric CLIP loss over the validation image-caption pairs (the original's ``eval_clip``), or with
``clip_select="val_ari"`` the validation ARI of the pooled embedding (what the SupCon stage uses). Saved as
``heads.safetensors`` (tensors) and ``heads.json`` (settings, losses, the per-epoch selection scores).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from capcse.errors import ConfigError
from capcse.losses.clip import CLIPLoss
from capcse.losses.supcon import SupConLoss
from capcse.models.dual import record_embedding
from capcse.train.samplers import HardNegativeBatchSampler

__all__ = ["ProjectionHeads", "train_heads", "project_embeddings", "save_heads", "load_heads", "validation_ari",
           "validation_clip_loss"]


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


@torch.no_grad()
def validation_ari(heads: ProjectionHeads, data: "_Features") -> float:
    """Validation ARI of the pooled embedding at ``heads.im_wt``, threshold tuned on the same records."""
    from capcse.evaluation.linkage_metrics import tune_threshold

    img, txt = heads.embed(data.image, data.text)
    return tune_threshold(record_embedding(img, txt, heads.im_wt).double().numpy(), data.labels.numpy()).score


@torch.no_grad()
def validation_clip_loss(heads: ProjectionHeads, data: "_Features", batch_size: int) -> float:
    """Mean symmetric CLIP loss over the validation image-caption pairs, in batches of ``batch_size``."""
    losses = []
    for s in range(0, len(data), batch_size):
        img, txt = heads.embed(data.image[s : s + batch_size], data.text[s : s + batch_size])
        losses.append(float(heads.clip_loss(img, txt, logit_scale=heads.logit_scale)))
    return float(np.mean(losses))


def _selector(metric: str, score, higher_is_better: bool, record: dict, log):
    """A Trainer callback keeping the best state (by ``score(model)``; before training = epoch 0). ``record``
    receives ``metric``, every epoch's score (``epochs``) and the epoch kept (``kept_epoch``)."""
    import copy

    from transformers import TrainerCallback

    record.update(metric=metric, epochs=[])

    class SelectBest(TrainerCallback):
        def __init__(self):
            self.best = None

        def _check(self, model, epoch):
            value = score(model)
            record["epochs"].append({"epoch": epoch, "score": value})
            better = self.best is None or (value > self.best[0] if higher_is_better else value < self.best[0])
            if better:  # strict, as the original: a tie keeps the earlier state
                self.best = (value, epoch, copy.deepcopy(model.state_dict()))
                record["kept_epoch"] = epoch

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self._check(model, 0)

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            self._check(model, int(round(state.epoch or 0)))

        def on_train_end(self, args, state, control, model=None, **kwargs):
            value, epoch, best_state = self.best
            model.load_state_dict(best_state)
            log(f"kept epoch {epoch} of {int(round(state.epoch or 0))} (validation {value:.4f})")

    return SelectBest()


def _make_trainer(model, dataset, out_dir: Path, *, epochs: int, lr: float, batch_size: int, seed: int, batch_sampler=None,
                  extra_callbacks=()):
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
    callbacks = ([RefreshHardNegatives()] if batch_sampler is not None else []) + list(extra_callbacks)
    return LinkageTrainer(model=model, args=args, train_dataset=dataset, data_collator=_collate, callbacks=callbacks)


@dataclass
class LinkTrainRecipe:
    """A ``capcse link train --config`` recipe (``configs/clippings-*.yaml``): flat keys, each the default of
    the option of the same name (options given on the command line win). Read by the recipe loader
    (:func:`capcse.train.recipe.load_recipe` with ``kind=LinkTrainRecipe``): unknown keys and values of the
    wrong type are one-line ConfigErrors naming the file."""

    name: str = ""
    description: str = ""
    stages: list[str] = field(default_factory=lambda: ["clip", "supcon"])
    seed: int = 0
    dim: int = 256
    im_wt: float = 0.5
    clip_epochs: int = 20
    supcon_epochs: int = 20
    m: int = 3
    k: int = 3
    supcon_batch: int = 54
    select_best: bool = False
    clip_select: str = "val_loss"


def train_heads(z: dict, out_dir, *, stages=("clip", "supcon"), seed: int = 0, dim: int = 256, im_wt: float = 0.5,
                clip_epochs: int = 20, clip_lr: float = 1e-3, clip_batch: int = 64, supcon_epochs: int = 20, supcon_lr: float = 5e-4,
                m: int = 3, k: int = 3, supcon_batch: int = 54, select_best: bool = False, clip_select: str = "val_loss",
                log=print) -> ProjectionHeads:
    """Train the heads on the ``train`` split of a feature file (``capcse link embed`` output).

    ``select_best``: keep, per stage, the state with the best validation score (see the module
    docstring); needs labelled ``validation`` records in ``z``. ``clip_select``: the CLIP stage's
    criterion, ``val_loss`` (the original's) or ``val_ari``.
    """
    if clip_select not in ("val_loss", "val_ari"):
        raise ConfigError(f"clip_select must be val_loss or val_ari, got {clip_select!r}")
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    train = z["split"] == "train"
    _, labels = np.unique(z["cluster_id"][train], return_inverse=True)
    heads = ProjectionHeads(z["image"].shape[1], z["text"].shape[1], dim=dim, seed=seed)
    heads.im_wt = float(im_wt)
    data = _Features(z["image"][train], z["text"][train], labels)
    history = {}
    selection = {}
    criteria = {}
    if select_best:
        val = z["split"] == "validation"
        if not val.any():
            raise ConfigError("select_best needs validation records in the feature file (split 'validation')")
        val_data = _Features(z["image"][val], z["text"][val], np.unique(z["cluster_id"][val], return_inverse=True)[1])
        # criterion -> (metric name, score of the heads, higher is better)
        criteria = {"val_loss": ("validation_clip_loss", lambda mdl: validation_clip_loss(mdl, val_data, clip_batch), False),
                    "val_ari": ("validation_ari", lambda mdl: validation_ari(mdl, val_data), True)}

    def selecting(stage: str, criterion: str) -> list:
        """The stage's selection callback (none without ``select_best``), recorded in ``selection[stage]``."""
        if not select_best:
            return []
        selection[stage] = {}
        return [_selector(*criteria[criterion], selection[stage], log)]

    if "clip" in stages:
        heads.stage = "clip"
        # unlabelled pairs: every record is its own class; no two copies of one picture should share a batch
        # as false negatives more than chance allows, so batches are plain random ones
        trainer = _make_trainer(heads, data, out_dir / "clip", epochs=clip_epochs, lr=clip_lr, batch_size=clip_batch, seed=seed,
                                extra_callbacks=selecting("clip", clip_select))
        history["clip"] = trainer.train().training_loss
        log(f"clip stage: mean loss {history['clip']:.4f}")
    if "supcon" in stages:
        heads.stage = "supcon"
        sampler = HardNegativeBatchSampler(labels, m=m, k=k, batch_size=supcon_batch, seed=seed)
        trainer = _make_trainer(heads, data, out_dir / "supcon", epochs=supcon_epochs, lr=supcon_lr, batch_size=supcon_batch, seed=seed,
                                batch_sampler=sampler, extra_callbacks=selecting("supcon", "val_ari"))
        history["supcon"] = trainer.train().training_loss
        log(f"supcon stage: mean loss {history['supcon']:.4f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_heads(heads, out_dir, {"stages": list(stages), "seed": seed, "dim": dim, "im_wt": im_wt, "loss": history,
                                "select_best": select_best, "selection": selection})
    return heads


def save_heads(heads: ProjectionHeads, out_dir, info: dict) -> None:
    """``heads.safetensors`` (the tensors) and ``heads.json`` (sizes and settings, to rebuild the module)."""
    from safetensors.torch import save_file

    from capcse.io import atomic_write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in heads.state_dict().items()}
    save_file(state, str(out_dir / "heads.safetensors"))
    atomic_write_json(out_dir / "heads.json", {"image_dim": heads.image.in_features, "text_dim": heads.text.in_features, **info})


def load_heads(out_dir) -> ProjectionHeads:
    """The heads written by :func:`save_heads` (no pickle)."""
    from safetensors.torch import load_file

    out_dir = Path(out_dir)
    info = json.loads((out_dir / "heads.json").read_text())
    heads = ProjectionHeads(info["image_dim"], info["text_dim"], dim=info["dim"])
    heads.load_state_dict(load_file(str(out_dir / "heads.safetensors")))
    heads.im_wt = float(info["im_wt"])
    return heads


@torch.no_grad()
def project_embeddings(heads: ProjectionHeads, z: dict) -> dict:
    """The feature file with image / text replaced by the heads' normalised projections."""
    img, txt = heads.embed(torch.as_tensor(z["image"], dtype=torch.float32), torch.as_tensor(z["text"], dtype=torch.float32))
    out = dict(z)
    out["image"], out["text"] = img.numpy(), txt.numpy()
    return out
