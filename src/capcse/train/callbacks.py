"""Evaluation during training: the capcse STS evaluator plugged into the sentence-transformers Trainer
(SimCSE evaluates STS-B dev every 125 steps and keeps the best checkpoint)."""

from __future__ import annotations

import logging
from typing import Any

from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from capcse.models.encoder import SentenceEncoder
from capcse.models.heads import inference_view

logger = logging.getLogger(__name__)


class STSDevEvaluator(BaseEvaluator):
    """Cosine Spearman x100 on STS data (default: STS-B dev), computed on the model's *inference* form
    (for ``mlp_only_train`` recipes: [CLS] without the MLP, as SimCSE evaluates).

    ``tasks``: STS task names understood by :func:`capcse.evaluation.sts.evaluate_sts`;
    ``datasets`` may be given directly (``task -> (split, {subset: data})``) for in-memory data.
    The primary metric is ``<name>_spearman`` (mean over the tasks); ``<name>_max_seq_length`` records
    the length sentences were truncated at (the model's inference length, not the training length).
    ``show_progress_bar``: None shows an encoding bar on a terminal once encoding has run ~5 s."""

    def __init__(self, tasks: tuple[str, ...] = ("stsb",), mode: str = "dev", *, data_dir=None,
                 variant: str = "senteval", pooler: str | None = None, mlp_only_train: bool = False,
                 datasets: dict[str, Any] | None = None, name: str = "stsb_dev", batch_size: int = 128,
                 show_progress_bar: bool | None = None):
        super().__init__()
        from capcse.evaluation.sts import load_sts_tasks

        self.tasks, self.mode, self.name = tuple(tasks), mode, name
        self.pooler, self.mlp_only_train = pooler, mlp_only_train
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.datasets = datasets if datasets is not None else load_sts_tasks(self.tasks, mode, data_dir=data_dir,
                                                                              variant=variant)
        self.primary_metric = "spearman"
        self.greater_is_better = True
        self.history: list[dict[str, float]] = []

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        from capcse.evaluation.sts import evaluate_sts

        with inference_view(model, self.pooler or "", self.mlp_only_train):
            encoder = SentenceEncoder(model, name="training", device=model.device, batch_size=self.batch_size)
            results = evaluate_sts(encoder, datasets=self.datasets, mode=self.mode,
                                   show_progress_bar=self.show_progress_bar)
        metrics: dict[str, float] = {f"{task}_spearman": r.spearman for task, r in results.tasks.items()}
        metrics["spearman"] = results.avg
        metrics["max_seq_length"] = encoder.max_seq_length
        self.history.append({"epoch": float(epoch), "steps": int(steps), **metrics})
        logger.info("STS dev at step %s: %s", steps, metrics)
        return self.prefix_name_to_metrics(metrics, self.name)
