"""Run a recipe: model -> data -> loss -> sentence-transformers Trainer -> saved model -> evaluation.

The loop is the sentence-transformers Trainer (itself the transformers Trainer): mixed precision,
gradient accumulation, warm-up and schedules, TensorBoard, DDP under ``torchrun``/``accelerate
launch``, checkpointing and ``resume_from_checkpoint`` all come from there. capcse adds the SimCSE
objective, the length-grouped batch sampler, the STS dev evaluator and the saving convention.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from capcse.errors import ConfigError
from capcse.io import atomic_write_json, atomic_write_text
from capcse.train.recipe import Recipe, dump_recipe

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path
    steps: int
    train_examples: int
    train_seconds: float
    best_dev: dict[str, Any] | None = None
    dev_history: list[dict[str, Any]] = field(default_factory=list)
    test: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "model_dir": str(self.model_dir), "steps": self.steps,
                "train_examples": self.train_examples, "train_seconds": round(self.train_seconds, 2),
                "best_dev": self.best_dev, "dev_history": self.dev_history, "test": self.test}


def build_model(recipe: Recipe):
    from capcse.models.encoder import load_sentence_transformer
    from capcse.models.heads import apply_training_form

    m = recipe.model
    model = load_sentence_transformer(m.name, device=recipe.train.device, max_length=m.max_length,
                                      trust_remote_code=m.trust_remote_code)
    model.max_seq_length = m.max_length
    apply_training_form(model, m.pooler, m.mlp_init, seed=recipe.train.seed)
    return model


def build_objective(recipe: Recipe, model):
    from capcse.losses.simcse import SimCSELoss
    from capcse.train.objective import SimCSEObjective

    loss_cfg = recipe.loss
    if loss_cfg.name != "simcse":
        raise ConfigError(f"loss.name {loss_cfg.name!r}: this trainer runs 'simcse'")
    loss = SimCSELoss(loss_cfg.temperature, loss_cfg.hard_negative_weight)
    if loss_cfg.mini_batch_size:
        from capcse.train.objective import CachedSimCSEObjective

        return CachedSimCSEObjective(model, loss, mini_batch_size=loss_cfg.mini_batch_size,
                                     mlm_weight=loss_cfg.mlm_weight, mlm_probability=loss_cfg.mlm_probability,
                                     gather_across_devices=loss_cfg.gather_across_devices)
    return SimCSEObjective(model, loss, mlm_weight=loss_cfg.mlm_weight, mlm_probability=loss_cfg.mlm_probability,
                           gather_across_devices=loss_cfg.gather_across_devices)


def training_arguments(recipe: Recipe, evaluate: bool):
    from sentence_transformers import SentenceTransformerTrainingArguments

    t = recipe.train
    if t.precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"train.precision must be fp32, bf16 or fp16, got {t.precision!r}")
    use_cpu = (t.device or "").startswith("cpu") or not torch.cuda.is_available()
    save_steps = t.save_steps or (recipe.eval.steps if evaluate else 500)
    kwargs: dict[str, Any] = dict(
        output_dir=str(recipe.output_dir),
        per_device_train_batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        warmup_steps=float(t.warmup_ratio),  # transformers v5: a float < 1 is a ratio of the total steps
        lr_scheduler_type=t.lr_scheduler,
        weight_decay=t.weight_decay,
        seed=t.seed,
        data_seed=t.seed,
        bf16=t.precision == "bf16",
        fp16=t.precision == "fp16",
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=t.save_total_limit,
        report_to=[r for r in t.report_to if r != "none"] or "none",
        dataloader_num_workers=t.dataloader_num_workers,
        use_cpu=use_cpu,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=recipe.eval.steps if evaluate else None,
        load_best_model_at_end=bool(evaluate and recipe.eval.load_best),
        metric_for_best_model="eval_stsb_dev_spearman" if evaluate else None,
        greater_is_better=True,
        disable_tqdm=True,
    )
    if t.group_by_length:
        from capcse.train.batching import LengthGroupedBatchSampler

        kwargs["batch_sampler"] = LengthGroupedBatchSampler
    return SentenceTransformerTrainingArguments(**kwargs)


def run_training(recipe: Recipe, *, resume: bool | str | None = None, log=print) -> TrainResult:
    """Train ``recipe``, save the final model (safetensors) with its model card, evaluate, report."""
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import set_seed

    from capcse.models.encoder import SentenceEncoder
    from capcse.models.heads import apply_inference_form
    from capcse.report.model_card import write_model_card
    from capcse.train.callbacks import STSDevEvaluator
    from capcse.train.data import load_train_dataset

    if recipe.train.torch_threads:
        torch.set_num_threads(recipe.train.torch_threads)
    set_seed(recipe.train.seed)
    out = recipe.output_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "recipe.yaml", dump_recipe(recipe))

    model = build_model(recipe)
    data_dir = recipe.data.data_dir or recipe.eval.data_dir
    dataset = load_train_dataset(recipe.data.train, fmt=recipe.data.format, columns=recipe.data.columns,
                                 limit=recipe.data.limit, data_dir=data_dir)
    log(f"train data: {recipe.data.train} -> {len(dataset)} examples, columns {dataset.column_names}")
    batch_sampler = None
    if recipe.loss.name in ("mcse", "dalr"):  # issue 5: multimodal objectives mix image-caption batches in
        from capcse.train.multimodal import prepare_multimodal

        dataset, objective, batch_sampler = prepare_multimodal(recipe, model, dataset, log=log)
    else:
        objective = build_objective(recipe, model)

    during = (recipe.eval.during or "none").lower()
    evaluator = None
    if during not in ("none", "no", "off"):
        if during != "stsb-dev":
            raise ConfigError(f"eval.during must be 'stsb-dev' or 'none', got {recipe.eval.during!r}")
        evaluator = STSDevEvaluator(("stsb",), "dev", data_dir=recipe.eval.data_dir, variant=recipe.eval.variant,
                                    pooler=recipe.model.pooler, mlp_only_train=recipe.model.mlp_only_train)

    args = training_arguments(recipe, evaluate=evaluator is not None)
    if batch_sampler is not None:  # issue 5: MCSE's interleaving of text-only and image-caption batches
        args.batch_sampler = batch_sampler
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=objective,
                                         evaluator=evaluator)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume if resume else None)
    seconds = time.perf_counter() - t0
    steps = int(trainer.state.global_step)

    history = list(evaluator.history) if evaluator else []
    best = max(history, key=lambda h: h["spearman"]) if history else None
    if best is not None and recipe.eval.load_best:
        log(f"best STS-B dev Spearman {best['spearman']:.2f} at step {best['steps']} (loaded)")

    model = trainer.model
    apply_inference_form(model, recipe.model.pooler, recipe.model.mlp_only_train)
    model_dir = out / "model"
    model.save(str(model_dir), safe_serialization=True)

    test_table, test_payload = None, None
    final = [t for t in (recipe.eval.final or []) if t not in ("none", "")]
    if final:
        from capcse.evaluation.suite import run_evaluation
        from capcse.report import write_report

        encoder = SentenceEncoder(model, name=str(model_dir), device=model.device)
        result = run_evaluation(encoder, ",".join(final), recipe.eval.mode, data_dir=recipe.eval.data_dir,
                                variant=recipe.eval.variant, name=recipe.name)
        write_report(result, out / "eval")
        test_payload = result.to_dict()
        if result.sts is not None:
            test_table = {r.name: r.spearman for r in result.sts.tasks.values()}
            if result.sts_avg() is not None:
                test_table["Avg."] = result.sts_avg()
    write_model_card(model_dir, recipe=recipe.to_dict(), steps=steps, train_examples=len(dataset),
                     best_dev=best, test_table=test_table, dev_history=history)
    res = TrainResult(out, model_dir, steps, len(dataset), seconds, best, history, test_payload)
    atomic_write_json(out / "train_summary.json", res.to_dict())
    return res
