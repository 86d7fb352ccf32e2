"""The glue between a SentenceTransformer, a loss over embeddings and the sentence-transformers Trainer.

:class:`SimCSEObjective` is what the Trainer calls with the collated columns. It embeds all columns in
**one** forward pass — SimCSE's ``[2N]`` (unsupervised: the same sentences twice, so dropout makes
the two views) or ``[3N]`` (supervised: anchor, entailment, contradiction) concatenated batch —
instead of one forward per column, then applies :class:`capcse.losses.simcse.SimCSELoss`.

Multi-device (``torchrun`` / ``accelerate launch``): the candidates (positives, hard negatives) are
gathered from every process with ``torch.distributed.nn.all_gather``, whose backward sums the
gradients of every process's loss into the local rows. Each process's loss is the mean over its own
anchors, DDP averages the parameter gradients, so the update is exactly the gradient of the mean loss
over the global batch with in-batch negatives from every process (tested against one process with
the whole batch in ``tests/train/test_distributed.py``). Processes may hold batches of different
sizes (the last batch of an epoch); the gather pads and unpads them.

:class:`CachedSimCSEObjective` is the GradCache variant (Gao et al., 2021, "Scaling Deep Contrastive
Learning Batch Size under Memory Limited Setup"): embed the concatenated batch without gradients in
mini-batches, compute the loss and its gradient with respect to the embeddings, then re-embed each
mini-batch with gradients replaying its dropout RNG and back-propagate the cached gradient. The
parameter gradient equals that of the full-batch loss over the same dropout masks (tested to 1e-5).
It reuses sentence-transformers' GradCache machinery (``CachedLossMixin``, ``RandContext``).
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses.gradcache import CachedLossMixin, RandContext, _create_minibatch
from torch import nn

from capcse.losses.simcse import SimCSELoss
from capcse.models.heads import build_mlm_head


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


def _row_counts(n: int, world: int, device) -> list[int]:
    """Every process's local row count, in rank order (for gathers of unequal sizes)."""
    import torch.distributed as dist

    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([n], dtype=torch.long, device=device))
    return [int(c.item()) for c in counts]


def gather_rows(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], int]:
    """All-gather each ``[n_local, D]`` tensor over the process group, keeping gradients, and return the
    gathered tensors with the offset of this process's first row in them.

    The backward of ``torch.distributed.nn.all_gather`` sums, into this process's rows, the gradients
    that every process's loss sends to them. Row counts may differ between processes (e.g. the last
    batch of an epoch): the tensors are padded to the largest count for the collective and unpadded."""
    import torch.distributed.nn as dist_nn

    rank, world = distributed_world()
    if world == 1:
        return list(tensors), 0
    n = tensors[0].size(0)
    counts = _row_counts(n, world, tensors[0].device)
    longest = max(counts)
    out = []
    for x in tensors:
        padded = F.pad(x, (0, 0, 0, longest - n)) if n < longest else x
        with warnings.catch_warnings():  # deprecated in favour of functional collectives, whose
            warnings.simplefilter("ignore", FutureWarning)  # backward needs reduce_scatter (not in gloo)
            parts = dist_nn.all_gather(padded.contiguous())
        out.append(torch.cat([p[:c] for p, c in zip(parts, counts)], dim=0))
    return out, sum(counts[:rank])


def gather_labels(labels: torch.Tensor) -> torch.Tensor:
    """All-gather a 1-d integer tensor (no gradient) over the process group, in rank order; counts may
    differ between processes."""
    import torch.distributed as dist

    _, world = distributed_world()
    if world == 1:
        return labels
    n = labels.numel()
    counts = _row_counts(n, world, labels.device)
    longest = max(counts)
    padded = torch.zeros(longest, dtype=labels.dtype, device=labels.device)
    padded[:n] = labels.view(-1)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def average_gradients_across_processes(module: nn.Module) -> bool:
    """Under DDP, make every parameter of ``module`` (a loss-side head that is not inside the
    DDP-wrapped model, e.g. the MLM head or MCSE's projection heads) start from rank 0's values and
    average its gradient over the processes, as DDP does for the encoder. Call it before the first
    backward. Returns whether hooks were registered (False: one process)."""
    world = distributed_world()[1]
    if world == 1:
        return False
    import torch.distributed as dist

    def average(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad / world

    for p in module.parameters():
        with torch.no_grad():  # start from rank 0's values, as DDP does for the model it wraps
            dist.broadcast(p.data, src=0)
        if p.requires_grad:
            p.register_hook(average)
    return True


def unwrap(model) -> Any:
    """The SentenceTransformer inside a DDP / torch.compile wrapper."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


class SimCSEObjective(nn.Module):
    """Unsupervised (1 column) or supervised (2–3 columns: anchor, positive[, hard negative]) SimCSE.

    ``mlm_weight > 0`` adds SimCSE's auxiliary MLM loss (a second forward of the masked batch through
    the encoder, then SimCSE's :class:`~capcse.models.heads.MLMHead`): ``loss = l_contrastive + mlm_weight *
    l_mlm``, where ``l_mlm`` is the mean cross-entropy over the masked tokens of this process's batch.
    ``mlm_head_init`` (simcse | pretrained | fresh): where the head starts
    (:func:`capcse.models.heads.build_mlm_head`; ``mlm_head_note`` says what happened).
    """

    def __init__(self, model, loss: SimCSELoss, *, mlm_weight: float = 0.0, mlm_probability: float = 0.15,
                 gather_across_devices: bool = True, mlm_head_init: str = "simcse"):
        super().__init__()
        self.model = model
        self.loss = loss
        self.gather_across_devices = gather_across_devices
        self.mlm_weight = float(mlm_weight)
        self.mlm_probability = float(mlm_probability)
        self.mlm_head = None
        self.mlm_head_init = mlm_head_init
        self.mlm_head_note = ""
        if self.mlm_weight > 0:
            from transformers import DataCollatorForLanguageModeling

            tokenizer = model.tokenizer
            if tokenizer.mask_token is None:
                raise ValueError("the MLM auxiliary loss needs a tokenizer with a mask token")
            hf = model[0].auto_model
            self.mlm_head, self.mlm_head_note = build_mlm_head(hf, getattr(hf.config, "_name_or_path", None),
                                                               mlm_head_init)
            self.mlm_head.to(hf.device)
            self._masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
            self._special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
            self._ddp_hooks = False

    @property
    def base_model(self):
        return unwrap(self.model)

    @property
    def pad_token_id(self) -> int:
        return self.base_model.tokenizer.pad_token_id or 0

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
        if self.gather_across_devices and distributed_world()[1] > 1:
            gathered, offset = gather_rows([positives] + ([negatives] if negatives is not None else []))
            positives = gathered[0]
            negatives = gathered[1] if negatives is not None else None
        return self.loss(anchors, positives, negatives, offset=offset)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: torch.Tensor | None = None) -> torch.Tensor:
        cols = self.columns(sentence_features)
        n = cols[0]["input_ids"].size(0)
        batch = concat_features(cols, self.pad_token_id)
        views = list(self.embed(batch).split(n))
        loss = self.contrastive_loss(views)
        if self.mlm_head is not None:
            mlm = self.mlm_features(batch)
            total, count = self.mlm_sum(mlm)
            loss = loss + self.mlm_weight * total / max(count, 1)
        return loss

    # ------------------------------------------------------------------------------------------ MLM
    def _sync_mlm_head(self) -> None:
        """Under DDP the MLM head (part of the loss, not of the DDP-wrapped model) gets its gradients
        averaged over processes by hooks, as DDP does for the encoder."""
        if not self._ddp_hooks:
            self._ddp_hooks = average_gradients_across_processes(self.mlm_head)

    def mlm_features(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Masked inputs and labels (-100 = not masked) for the MLM auxiliary loss: 15 % of the real
        tokens, 80 % -> [MASK], 10 % -> random, 10 % unchanged (BERT's / SimCSE's recipe)."""
        input_ids = batch["input_ids"].detach().cpu().clone()
        special = torch.isin(input_ids, self._special_ids) | (batch["attention_mask"].detach().cpu() == 0)
        masked, labels = self._masker.torch_mask_tokens(input_ids, special_tokens_mask=special)
        device = batch["input_ids"].device
        out = {"input_ids": masked.to(device), "attention_mask": batch["attention_mask"],
               "mlm_labels": labels.to(device)}
        if "token_type_ids" in batch:
            out["token_type_ids"] = batch["token_type_ids"]
        return out

    def mlm_sum(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over the masked tokens of ``features`` and their number."""
        self._sync_mlm_head()
        inputs = {k: v for k, v in features.items() if k != "mlm_labels"}
        labels = features["mlm_labels"]
        hidden = self.base_model[0].auto_model(**inputs).last_hidden_state
        logits = self.mlm_head(hidden)
        total = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100,
                                reduction="sum")
        return total, int((labels != -100).sum())

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperature": self.loss.temperature, "hard_negative_weight": self.loss.hard_negative_weight,
                "mlm_weight": self.mlm_weight, "mlm_head_init": self.mlm_head_init,
                "gather_across_devices": self.gather_across_devices}

    @property
    def citation(self) -> str:
        return ("@inproceedings{gao2021simcse, title={SimCSE: Simple Contrastive Learning of Sentence Embeddings}, "
                "author={Gao, Tianyu and Yao, Xingcheng and Chen, Danqi}, booktitle={EMNLP}, year={2021}}")


class CachedSimCSEObjective(CachedLossMixin, SimCSEObjective):
    """SimCSE with GradCache: the same loss and gradient as :class:`SimCSEObjective`, with the encoder's
    activations alive for only ``mini_batch_size`` rows of the concatenated ``[2N]``/``[3N]`` batch at a
    time.

    1. embed every mini-batch of the concatenated batch without gradients, snapshotting the RNG
       (:class:`RandContext`) before each;
    2. compute the contrastive loss over the whole batch (gathered across processes as usual) and
       back-propagate it to the embeddings, whose gradients are cached;
    3. during the Trainer's ``loss.backward()``: re-embed each mini-batch with gradients, restoring its
       RNG snapshot so dropout draws the same masks, and back-propagate its cached gradient.

    With ``mlm_weight > 0`` the masked batch is one more "column" whose per-mini-batch output is the
    summed MLM cross-entropy (its cached gradient is ``mlm_weight / masked tokens``), so the auxiliary
    loss is mini-batched too. It is replayed *before* the contrastive mini-batches, so that under DDP
    the last (synchronising) backward goes through the DDP-wrapped model.
    """

    def __init__(self, model, loss: SimCSELoss, *, mini_batch_size: int = 32, mlm_weight: float = 0.0,
                 mlm_probability: float = 0.15, gather_across_devices: bool = True,
                 show_progress_bar: bool = False, mlm_head_init: str = "simcse"):
        SimCSEObjective.__init__(self, model, loss, mlm_weight=mlm_weight, mlm_probability=mlm_probability,
                                 gather_across_devices=gather_across_devices, mlm_head_init=mlm_head_init)
        if int(mini_batch_size) < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
        self.mini_batch_size = int(mini_batch_size)
        self.show_progress_bar = show_progress_bar
        self._rows = 0
        self._mlm_count = 0

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: torch.Tensor | None = None) -> torch.Tensor:
        cols = self.columns(sentence_features)
        self._rows = cols[0]["input_ids"].size(0)
        batch = concat_features(cols, self.pad_token_id)
        features = [batch]
        if self.mlm_head is not None:
            mlm = self.mlm_features(batch)
            self._mlm_count = int((mlm["mlm_labels"] != -100).sum())
            features.insert(0, mlm)
        return self.forward_cached(features, labels)

    def calculate_loss(self, reps: list[list[torch.Tensor]], labels: torch.Tensor | None = None, *,
                       with_backward: bool = False) -> torch.Tensor:
        views = list(torch.cat(reps[-1], dim=0).split(self._rows))
        loss = self.contrastive_loss(views)
        if self.mlm_head is not None:
            loss = loss + self.mlm_weight * torch.cat(reps[0]).sum() / max(self._mlm_count, 1)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def embed_minibatch(self, sentence_feature: dict[str, torch.Tensor], begin: int, end: int, with_grad: bool,
                        copy_random_state: bool, random_state: RandContext | None = None):
        if "mlm_labels" not in sentence_feature:
            return super().embed_minibatch(sentence_feature, begin, end, with_grad, copy_random_state, random_state)
        minibatch = _create_minibatch(sentence_feature, begin, end)
        with random_state if random_state is not None else nullcontext():
            with nullcontext() if with_grad else torch.no_grad():
                random_state = RandContext(*minibatch.values()) if copy_random_state else None
                total, _ = self.mlm_sum(minibatch)
        return total.reshape(1), random_state

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
