"""Multimodal training (MCSE / DALR): text-only batches and image–caption batches, interleaved as MCSE does.

A multimodal recipe has ``loss.name: mcse`` or ``dalr`` and a ``multimodal:`` section (see
:class:`MultimodalConfig` and docs/multimodal.md). :func:`prepare_multimodal` turns it into what the
sentence-transformers Trainer needs:

* **data** — one ``datasets.Dataset`` with a ``text`` column and a ``label`` column that says what a
  row is: ``label >= 0`` a row of the text corpus (``data.train``, e.g. wiki), ``label = -(p + 1)``
  image–caption pair ``p``. :class:`MixedModalityBatchSampler` makes every batch homogeneous and
  interleaves them with MCSE's schedule (``train_mix.py``): an epoch has ``T + P`` steps (T text
  batches, P pair batches); step ``s`` takes a pair batch when ``s % (T // P) == 0``, else a text
  batch; both streams cycle, reshuffle when exhausted and continue across epochs.
* **image side** — a frozen vision encoder's features, computed once per (image, encoder) and read
  from a memory-mapped cache (:class:`capcse.data.image_features.ImageFeatureCache`); the vision
  model never runs inside the training loop.
* **teachers** (DALR) — up to two frozen sentence encoders; their caption–caption cosine matrices are
  mixed ``alpha * S_1 + (1 - alpha) * S_2``. ``teacher_mode: precompute`` embeds every sentence that
  needs a teacher once, before training, and caches the embeddings on disk (keyed by the sentence
  text and the teacher's weights); ``batch`` runs the frozen teachers on each batch.
* **objective** — :class:`MultimodalObjective`: one concatenated forward of the batch's two dropout
  views, then every loss term the batch supports, each weighted by configuration:

  ======================  =====================================================  ============
  term                    loss                                                   batches
  ======================  =====================================================  ============
  ``text``                SimCSE InfoNCE (DALR: with angular margin ``text``)    all
  ``grounding``           MCSE ``l^VS`` / DALR margin InfoNCE with soft labels   pairs
  ``soft_label``          DALR soft-label KL (image–image, teacher text–text)    pairs
  ``global_alignment``    DALR intra-modal KL to the teacher's distribution      pairs [+ text]
  ``ranking``             ListMLE / ListNet against the teacher ranking           pairs [+ text]
  ``consistency``         RankCSE JS divergence between the two views            all
  ======================  =====================================================  ============

  The objective returns the weighted terms as a dict (logged separately by the Trainer, summed
  into the loss). A term with weight 0 is not computed (ablations).
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler
from torch import nn

from capcse.errors import ConfigError
from capcse.losses.dalr import (AngularMarginInfoNCE, SoftLabelAlignmentLoss, angular_margin_cosine, cosine_matrix,
                                false_negative_mask)
from capcse.losses.grounding import MCSEGroundingLoss
from capcse.losses.ranking import (DistributionAlignmentLoss, ListMLELoss, ListNetLoss, RankingConsistencyLoss,
                                   mix_teacher_similarities)
from capcse.models.poolers import POOLERS
from capcse.train.batching import arrow_table
from capcse.train.objective import (average_gradients_across_processes, concat_features, distributed_world,
                                    gather_labels, gather_rows)

logger = logging.getLogger(__name__)

MULTIMODAL_LOSSES = ("mcse", "dalr")
TERMS = ("text", "grounding", "soft_label", "global_alignment", "ranking", "consistency")
DEFAULT_WEIGHTS = {
    # MCSE run_wiki_flickr.sh: loss = l^S + 0.01 l^VS
    "mcse": {"text": 1.0, "grounding": 0.01, "soft_label": 0.0, "global_alignment": 0.0, "ranking": 0.0,
             "consistency": 0.0},
    # DALR train_mix.py: loss = contrastive + 0.1 * cross + 0.2 * intra (hard-coded there), with
    # cross = margin InfoNCE + soft-label KL and intra = global-alignment KL + gamma (1.0) * ListMLE
    "dalr": {"text": 1.0, "grounding": 0.1, "soft_label": 0.1, "global_alignment": 0.2, "ranking": 0.2,
             "consistency": 0.0},
}
DEFAULT_MARGINS = {"mcse": {"text": 0.0, "cross": 0.0}, "dalr": {"text": 0.18, "cross": 0.18}}
TEACHER_SIMILARITIES = ("features", "similarities")


@dataclass
class MultimodalConfig:
    """The ``multimodal:`` recipe section (defaults depend on ``loss.name``; see docs/multimodal.md)."""

    pairs: str | None = None                 # image-caption source (capcse.data.image_text)
    image_root: str | None = None
    split: str | None = "train"              # never train on test images
    captions_per_image: int | None = 1       # MCSE / DALR: one random caption per image; null = all
    vision: str = "efficientnet-lite0"       # frozen image encoder (capcse.models.image)
    vision_batch_size: int = 32
    feature_cache: str | None = None         # default ~/.cache/capcse/features
    proj_dim: int = 256
    grounding_input: str = "sentence"        # sentence | cls_before_pooler (MCSE with cls + MLP)
    temperature_vl: float = 0.05             # tau' of the cross-modal terms
    weights: dict[str, float] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)   # text, cross (radians)
    false_negatives: dict[str, Any] = field(default_factory=dict)  # same_image, image_threshold, teacher_threshold
    teachers: list[str] = field(default_factory=list)         # up to two frozen sentence encoders
    alpha: float = 0.33                      # weight of the first teacher
    teacher_temperature: float = 0.05        # tau_2: teacher logits = cos / tau_2
    teacher_mode: str = "precompute"         # precompute (cached on disk) | batch
    teacher_batch_size: int = 128
    teacher_pooler: str | None = None        # teachers' pooling; null = the model's own (a plain HF id: avg)
    teacher_similarity: str = "features"     # KL targets from mixed teacher features (DALR) | similarities
    ranking: str = "listmle"                 # listmle | listnet
    listmle: str = "reference"               # reference (RankCSE/DALR: cumsum + 1e-7) | exact
    student_margin: bool = True              # DALR: margins.text also on the distillation students
    rank_on_text_batches: bool = False       # DALR: teacher terms on image-caption batches only
    soft_label_temperatures: dict[str, float] = field(default_factory=dict)  # student, target

    @classmethod
    def from_recipe(cls, recipe) -> "MultimodalConfig":
        method = recipe.loss.name
        if method not in MULTIMODAL_LOSSES:
            raise ConfigError(f"loss.name {method!r} is not multimodal ({', '.join(MULTIMODAL_LOSSES)})")
        raw = dict(getattr(recipe, "multimodal", None) or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"multimodal: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        cfg = cls(**raw)
        weights = dict(DEFAULT_WEIGHTS[method])
        bad = sorted(set(cfg.weights) - set(TERMS))
        if bad:
            raise ConfigError(f"multimodal.weights: unknown term(s) {bad}; terms: {', '.join(TERMS)}")
        weights.update({k: float(v) for k, v in cfg.weights.items()})
        cfg.weights = weights
        margins = dict(DEFAULT_MARGINS[method])
        if set(cfg.margins) - set(margins):
            raise ConfigError(f"multimodal.margins takes 'text' and 'cross', got {sorted(cfg.margins)}")
        margins.update({k: float(v) for k, v in cfg.margins.items()})
        cfg.margins = margins
        fn = {"same_image": True, "image_threshold": None, "teacher_threshold": None}
        if set(cfg.false_negatives) - set(fn):
            raise ConfigError(f"multimodal.false_negatives takes {sorted(fn)}, got {sorted(cfg.false_negatives)}")
        fn.update(cfg.false_negatives)
        cfg.false_negatives = fn
        temps = {"student": 0.0225, "target": 0.5}
        temps.update({k: float(v) for k, v in cfg.soft_label_temperatures.items()})
        cfg.soft_label_temperatures = temps
        cfg.teachers = [cfg.teachers] if isinstance(cfg.teachers, str) else list(cfg.teachers or [])
        cfg.validate(method)
        return cfg

    def needs_teacher(self) -> bool:
        return any(self.weights[t] > 0 for t in ("soft_label", "global_alignment", "ranking")) or \
            self.false_negatives.get("teacher_threshold") is not None

    def validate(self, method: str) -> None:
        if not self.pairs:
            raise ConfigError("multimodal.pairs: give the image-caption data (a file, folder or caption set name)")
        if self.ranking not in ("listmle", "listnet"):
            raise ConfigError(f"multimodal.ranking must be listmle or listnet, got {self.ranking!r}")
        if self.listmle not in ListMLELoss.FORMS:
            raise ConfigError(f"multimodal.listmle must be reference or exact, got {self.listmle!r}")
        if self.teacher_similarity not in TEACHER_SIMILARITIES:
            raise ConfigError(f"multimodal.teacher_similarity must be features or similarities, "
                              f"got {self.teacher_similarity!r}")
        if self.teacher_pooler is not None and self.teacher_pooler not in POOLERS:
            raise ConfigError(f"multimodal.teacher_pooler must be one of {', '.join(POOLERS)} or null, "
                              f"got {self.teacher_pooler!r}")
        if self.teacher_mode not in ("precompute", "batch"):
            raise ConfigError(f"multimodal.teacher_mode must be precompute or batch, got {self.teacher_mode!r}")
        if len(self.teachers) > 2:
            raise ConfigError(f"multimodal.teachers: at most two teachers, got {self.teachers}")
        if self.needs_teacher() and not self.teachers:
            raise ConfigError(f"{method}: soft_label / global_alignment / ranking weights need multimodal.teachers")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"multimodal.alpha must be in [0, 1], got {self.alpha}")
        for name, w in self.weights.items():
            if w < 0 or not math.isfinite(w):
                raise ConfigError(f"multimodal.weights.{name} must be a finite value >= 0, got {w}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------- data
def pair_label(p: int) -> int:
    """The ``label`` of image-caption pair ``p`` (text rows keep their row index >= 0)."""
    return -(int(p) + 1)


def build_mixed_dataset(text_dataset, captions: list[str]):
    """Text rows (``label`` = row index) followed by caption rows (``label = -(p + 1)``)."""
    from datasets import Dataset, concatenate_datasets

    if text_dataset is not None and len(text_dataset.column_names) != 1:
        raise ConfigError(f"multimodal recipes train unsupervised on one text column; data.train has "
                          f"{text_dataset.column_names} (choose one with data.columns)")
    parts = []
    if text_dataset is not None and len(text_dataset):
        col = text_dataset.column_names[0]
        t = text_dataset.rename_column(col, "text") if col != "text" else text_dataset
        parts.append(t.add_column("label", list(range(len(t)))))
    parts.append(Dataset.from_dict({"text": list(captions), "label": [pair_label(p) for p in range(len(captions))]}))
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def label_column(dataset) -> np.ndarray:
    return arrow_table(dataset).column("label").to_numpy().astype(np.int64)


def mcse_schedule(n_text_batches: int, n_pair_batches: int) -> list[bool]:
    """MCSE's ``train_mix.py`` interleaving: ``True`` (pair batch) at steps ``s % (T // P) == 0``
    of the ``T + P`` steps of an epoch (``T // P`` floored at 1)."""
    total = n_text_batches + n_pair_batches
    if n_pair_batches == 0:
        return [False] * total
    if n_text_batches == 0:
        return [True] * total
    stride = max(1, n_text_batches // n_pair_batches)
    return [s % stride == 0 for s in range(total)]


class MixedModalityBatchSampler(DefaultBatchSampler):
    """Homogeneous batches (all text rows or all image-caption rows) in MCSE's interleaved order.

    Rows are told apart by the dataset's ``label`` column (see :func:`build_mixed_dataset`). Each
    stream is endless and continues across epochs, as MCSE's ``inf_train_gen`` generators do (they
    are created once, before the epoch loop): pass ``k`` over a stream is a fresh shuffle seeded by
    ``(seed, stream, k)``, and epoch ``e`` resumes each stream where epoch ``e - 1`` left it (the
    schedule fixes how many batches of each kind an epoch takes, so the position is computed, not
    stored: a resumed run gets the same batches).

    Multi-process (``torchrun`` / ``accelerate launch``): accelerate deals the sampler's batches out
    round-robin (process ``r`` takes batches ``r, r + W, ...``), and the objective gathers the ``W``
    batches of a step into one, which must therefore be of one kind. With ``W`` processes the schedule
    is made over global steps (``T // W`` text steps, ``P // W`` pair steps) and every slot yields
    ``W`` consecutive batches of its kind. One process: exactly MCSE's schedule."""

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0, world_size: int | None = None):
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        labels = label_column(dataset)
        self.text_rows = np.flatnonzero(labels >= 0)
        self.pair_rows = np.flatnonzero(labels < 0)
        self.world_size = max(1, int(world_size if world_size is not None else distributed_world()[1]))

    def _n_batches(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _stream(self, rows: np.ndarray, stream: int, start: int) -> Iterator[list[int]]:
        """The endless stream's batches from batch ``start`` on (pass ``k`` shuffled by ``(seed, stream, k)``)."""
        n = self._n_batches(len(rows))
        if n == 0:
            return
        k, b = divmod(start, n)
        while True:
            generator = torch.Generator()
            generator.manual_seed(int(np.random.SeedSequence([int(self.seed), stream, k]).generate_state(1)[0]))
            order = rows[torch.randperm(len(rows), generator=generator).numpy()]
            for i in range(b, n):
                yield order[i * self.batch_size: (i + 1) * self.batch_size].tolist()
            k, b = k + 1, 0

    def _slots(self) -> list[bool]:
        """The schedule over global steps (one slot = ``world_size`` batches of one kind)."""
        w = self.world_size
        t, p = self._n_batches(len(self.text_rows)), self._n_batches(len(self.pair_rows))
        return mcse_schedule(max(1, t // w) if t else 0, max(1, p // w) if p else 0)

    def __iter__(self) -> Iterator[list[int]]:
        slots, epoch = self._slots(), int(getattr(self, "epoch", 0))
        per_epoch_pairs = sum(slots) * self.world_size          # batches each stream gives per epoch
        per_epoch_texts = (len(slots) - sum(slots)) * self.world_size
        texts = self._stream(self.text_rows, 0, epoch * per_epoch_texts)
        pairs = self._stream(self.pair_rows, 1, epoch * per_epoch_pairs)
        for is_pair in slots:
            for _ in range(self.world_size):
                yield next(pairs) if is_pair else next(texts)

    def __len__(self) -> int:
        return len(self._slots()) * self.world_size


# ------------------------------------------------------------------------------------------- teachers
def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class TeacherBank:
    """Frozen teachers' cosine similarities among a batch's sentences, mixed with ``alpha``.

    ``mode='precompute'``: :meth:`prepare` embeds the given sentences once per teacher and caches the
    embeddings in a :class:`capcse.data.image_features.FeatureStore` (keyed by sentence text and the
    teacher's identity: name, weights hash, pooling); batches then read rows. ``mode='batch'``: the
    frozen teachers encode each batch (no gradient). ``pooler`` (one of
    :data:`capcse.models.poolers.POOLERS`) sets the teachers' pooling; ``None`` keeps a
    sentence-transformers model's own and gives a plain transformers id ``avg``. DALR pools its SimCSE
    and DiffCSE teachers with ``cls_before_pooler`` (``train_mix.py``, ``teachers.py``). ``max_length``
    truncates the teachers' input: DALR and RankCSE feed the teachers the student's tokenisation
    (``max_seq_length`` 32), so :func:`prepare_multimodal` passes the student's ``model.max_length``."""

    def __init__(self, names: list[str], *, alpha: float = 0.33, mode: str = "precompute", cache_dir=None,
                 batch_size: int = 128, device=None, encoders: list | None = None, pooler: str | None = None,
                 max_length: int | None = None):
        from capcse.models.encoder import load_encoder

        self.names = list(names)
        self.alpha = float(alpha)
        self.mode = mode
        self.cache_dir = cache_dir
        self.pooler = pooler
        self.encoders = encoders if encoders is not None else [
            load_encoder(n, pooler=pooler, device=device or "cpu", batch_size=batch_size, max_length=max_length)
            for n in self.names]
        for enc in self.encoders:
            enc.model.eval()
            for p in enc.model.parameters():
                p.requires_grad_(False)
        self.tables: list | None = None

    def identity(self, i: int) -> dict[str, Any]:
        from capcse.data.image_features import state_dict_sha256

        enc = self.encoders[i]
        return {"name": self.names[i] if i < len(self.names) else enc.name, "kind": "sentence-teacher",
                "weights_sha256": state_dict_sha256(enc.model), "max_seq_length": enc.max_seq_length,
                "modules": [type(m).__name__ for m in enc.model], "pooler": getattr(enc, "pooler", None)}

    def prepare(self, texts: Iterable[str]) -> None:
        """Embed ``texts`` with every teacher (precompute mode), reusing the on-disk cache."""
        if self.mode != "precompute":
            return
        from capcse.data.image_features import FeatureStore, default_cache_dir

        texts = list(dict.fromkeys(texts))
        by_key = {text_key(t): t for t in texts}
        self.tables = []
        for i, enc in enumerate(self.encoders):
            store = FeatureStore(self.cache_dir or default_cache_dir(), f"teacher-{self.names[i]}", self.identity(i),
                                 prune=False)

            def compute(keys, enc=enc):
                emb = enc.encode([by_key[k] for k in keys], show_progress_bar=sys.stderr.isatty())
                return np.asarray(emb, dtype=np.float32), list(keys), {}

            self.tables.append(store.get_or_compute(list(by_key), compute))

    def embeddings(self, texts: list[str]) -> list[torch.Tensor]:
        if self.mode == "precompute":
            if self.tables is None:
                raise RuntimeError("TeacherBank.prepare() was not called")
            keys = [text_key(t) for t in texts]
            return [torch.from_numpy(np.asarray(tab.array[tab.rows(keys)])) for tab in self.tables]
        return [enc.encode(texts, convert_to_tensor=True) for enc in self.encoders]

    @torch.no_grad()
    def similarities(self, texts: list[str], device=None, mix: str = "similarities") -> torch.Tensor:
        """Mixed teacher cosine matrix [n, n] for ``texts`` (``alpha`` weights the first teacher).

        ``mix='similarities'``: ``alpha cos(T1) + (1 - alpha) cos(T2)`` (RankCSE, DALR's ranking target);
        ``'features'``: ``cos`` of the mixed embeddings ``alpha z_T1 + (1 - alpha) z_T2`` (DALR's
        soft-label and global-alignment target; the two teachers must have one width)."""
        embs = [e.float() for e in self.embeddings(texts)]
        if mix == "features" and len(embs) > 1:
            if embs[0].shape != embs[1].shape:
                raise ConfigError(f"multimodal.teacher_similarity: features mixes the teachers' embeddings, which "
                                  f"needs one width ({embs[0].shape[1]} vs {embs[1].shape[1]}); use similarities")
            mixed_emb = mix_teacher_similarities(embs[0], embs[1], self.alpha)
            mixed = cosine_matrix(mixed_emb, mixed_emb)
        else:
            sims = [cosine_matrix(e, e) for e in embs]
            mixed = mix_teacher_similarities(sims[0], sims[1] if len(sims) > 1 else None, self.alpha)
        return mixed.to(device) if device is not None else mixed


# ------------------------------------------------------------------------------------------ objective
class MultimodalObjective(nn.Module):
    """MCSE / DALR over mixed batches (see the module docstring). ``forward(features, labels)`` returns
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


class TextLookup:
    """Row label -> sentence (text rows from the Arrow dataset, captions from a list)."""

    def __init__(self, text_dataset, captions: list[str]):
        self.text_dataset = text_dataset
        self.col = text_dataset.column_names[0] if text_dataset is not None else None
        self.captions = list(captions)

    def __call__(self, labels: list[int]) -> list[str]:
        text_rows = [lab for lab in labels if lab >= 0]
        texts = iter(self.text_dataset.select(text_rows)[self.col]) if text_rows else iter(())
        return [self.captions[-lab - 1] if lab < 0 else next(texts) for lab in labels]

    def all_captions(self) -> list[str]:
        return list(self.captions)


# -------------------------------------------------------------------------------------------- assembly
@dataclass
class MultimodalData:
    dataset: Any
    captions: list[str]
    pair_image_rows: np.ndarray
    image_features: np.ndarray
    summary: dict[str, Any]


def load_multimodal_data(cfg: MultimodalConfig, text_dataset, *, seed: int = 0, data_dir=None, device=None,
                         image_encoder=None, log=print) -> MultimodalData:
    """Pairs + cached frozen image features + the mixed dataset. ``image_encoder`` overrides ``cfg.vision``."""
    from capcse.data.image_features import ImageFeatureCache
    from capcse.data.image_text import read_image_text_pairs

    pairs = read_image_text_pairs(cfg.pairs, image_root=cfg.image_root, split=cfg.split,
                                  captions_per_image=cfg.captions_per_image, seed=seed, data_dir=data_dir)
    if image_encoder is None:
        from capcse.models.image import load_image_encoder

        image_encoder = load_image_encoder(cfg.vision, trainable=False)
        if device is not None:
            image_encoder.to(device)
    cache = ImageFeatureCache(image_encoder, cfg.feature_cache, batch_size=cfg.vision_batch_size, device=device)
    table = cache.features(list(pairs.images.items()))
    kept = [p for p in pairs if p.image_id not in table.failed]
    if len(kept) < len(pairs):
        log(f"skipped {len(pairs) - len(kept)} caption(s) whose image could not be decoded")
    if not kept:
        raise ConfigError(f"{cfg.pairs}: no image could be encoded")
    captions = [p.caption for p in kept]
    rows = table.rows(p.image_id for p in kept)
    dataset = build_mixed_dataset(text_dataset, captions)
    summary = {**pairs.summary(), "pairs_used": len(kept), "images_used": len(set(rows.tolist())),
               "feature_cache": str(table.path), "vision": table.identity["name"],
               "text_rows": len(text_dataset) if text_dataset is not None else 0}
    return MultimodalData(dataset, captions, rows, table.array, summary)


def prepare_multimodal(recipe, model, text_dataset, *, log=print, image_encoder=None, teacher_encoders=None):
    """(dataset, objective, batch sampler class) for a multimodal recipe (used by ``capcse train``)."""
    cfg = MultimodalConfig.from_recipe(recipe)
    device = model.device
    data_dir = recipe.data.data_dir or recipe.eval.data_dir
    data = load_multimodal_data(cfg, text_dataset, seed=recipe.train.seed, data_dir=data_dir,
                                device=recipe.train.device, image_encoder=image_encoder, log=log)
    log(f"multimodal ({recipe.loss.name}): {data.summary['pairs_used']} image-caption pairs over "
        f"{data.summary['images_used']} images (features: {data.summary['feature_cache']}), "
        f"{data.summary['text_rows']} text rows")
    texts = TextLookup(text_dataset, data.captions)
    teacher = None
    if cfg.needs_teacher():
        teacher = TeacherBank(cfg.teachers, alpha=cfg.alpha, mode=cfg.teacher_mode, cache_dir=cfg.feature_cache,
                              batch_size=cfg.teacher_batch_size, device=device, encoders=teacher_encoders,
                              pooler=cfg.teacher_pooler, max_length=recipe.model.max_length)
        need = list(data.captions)
        if cfg.rank_on_text_batches and text_dataset is not None:
            need += list(text_dataset[text_dataset.column_names[0]])
        teacher.prepare(need)
    objective = MultimodalObjective(model, recipe.loss.name, cfg, temperature=recipe.loss.temperature,
                                    image_features=data.image_features, pair_image_rows=data.pair_image_rows,
                                    texts=texts, teacher=teacher,
                                    gather_across_devices=recipe.loss.gather_across_devices)
    objective.to(device)
    return data.dataset, objective, MixedModalityBatchSampler
