"""The ``multimodal:`` recipe section of MCSE / DALR: :class:`MultimodalConfig`, its per-method defaults and checks."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from capcse.errors import ConfigError
from capcse.losses.ranking import ListMLELoss
from capcse.models.poolers import POOLERS


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
