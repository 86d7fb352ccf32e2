"""Run a recipe: model -> data -> loss -> sentence-transformers Trainer -> saved model -> evaluation.

The loop is the sentence-transformers Trainer (itself the transformers Trainer): mixed precision,
gradient accumulation, warm-up and schedules, TensorBoard, DDP under ``torchrun``/``accelerate
launch``, checkpointing and ``resume_from_checkpoint`` all come from there. capcse adds the SimCSE
objective, the length-grouped batch sampler, the STS dev evaluator and the saving convention.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from capcse.errors import ConfigError
from capcse.io import atomic_write_json, atomic_write_text
from capcse.train.recipe import Recipe, dump_recipe, validate_recipe

logger = logging.getLogger(__name__)

#: eval.during values: STS dev sets that exist (SimCSE selects on STS-B dev; Korean recipes on KorSTS dev).
DEV_TASKS = {"stsb-dev": "stsb", "sickr-dev": "sickr", "korsts-dev": "korsts"}
OBJECTIVE_STATE = "capcse_objective.safetensors"


def world_size() -> int:
    """Processes of this run: ``WORLD_SIZE`` as set by torchrun / accelerate launch (1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def dev_task(recipe: Recipe) -> str | None:
    """The STS task evaluated during training (``eval.during``), or None."""
    during = (recipe.eval.during or "none").lower()
    if during in ("none", "no", "off", ""):
        return None
    if during not in DEV_TASKS:
        raise ConfigError(f"eval.during must be one of {', '.join(DEV_TASKS)} or 'none', got {recipe.eval.during!r}")
    return DEV_TASKS[during]


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
    losses: list[dict[str, float]] = field(default_factory=list)  # {"step", "loss"} every logging_steps
    max_seq_length: int | None = None  # the saved model's inference length (training batches: model.max_length)
    best_loaded: bool = False          # the saved weights are those of the best dev step

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "model_dir": str(self.model_dir), "steps": self.steps,
                "train_examples": self.train_examples, "train_seconds": round(self.train_seconds, 2),
                "max_seq_length": self.max_seq_length, "best_dev": self.best_dev,
                "best_loaded": self.best_loaded, "dev_history": self.dev_history, "losses": self.losses,
                "test": self.test}


def build_model(recipe: Recipe):
    from capcse.models.encoder import load_sentence_transformer
    from capcse.models.heads import apply_training_form

    m = recipe.model
    validate_recipe(recipe)
    model = load_sentence_transformer(m.name, device=recipe.train.device, trust_remote_code=m.trust_remote_code)
    # Issue 13 §1: model.max_length truncates training batches only (the collator, run_training); the
    # model itself -- dev evaluation, the saved folder, every loading path -- keeps its inference length.
    model.max_seq_length = m.inference_max_length or model.max_seq_length
    apply_training_form(model, m.pooler, m.mlp_init, seed=recipe.train.seed)
    if wants_fast_dropout(recipe.train.fast_dropout, model.device):
        from capcse.models.dropout import use_fast_dropout

        use_fast_dropout(model)
    return model


def truncate_training_batches(trainer, max_length: int) -> None:
    """Make the Trainer's data collator cut every training text at ``max_length`` tokens (SimCSE's
    ``--max_seq_length``), whatever the model's own ``max_seq_length`` (its inference length). The
    sentence-transformers collator forwards ``max_length`` to ``model.preprocess``, where it overrides
    the module's length for that call only."""
    collator = trainer.data_collator
    if not hasattr(collator, "max_length"):
        raise ConfigError(f"the Trainer's data collator {type(collator).__name__} takes no max_length: "
                          "training batches could not be truncated at model.max_length")
    collator.max_length = int(max_length)


def wants_fast_dropout(setting: str | bool, device: torch.device) -> bool:
    """``train.fast_dropout``: ``auto`` means on a CPU only (torch's own dropout is fast on GPUs)."""
    if setting in (True, "on", "true"):
        return True
    if setting in (False, "off", "false", None):
        return False
    if setting == "auto":
        return torch.device(device).type == "cpu"
    raise ConfigError(f"train.fast_dropout must be auto, on or off, got {setting!r}")


def show_progress(setting: str | bool | None) -> bool:
    """``train.progress``: ``on`` -> True, ``off`` -> False; ``auto`` -> bars only when stderr is a terminal
    (quiet in logs and CI). The Trainer's step bar follows it; dev-evaluation encoding in ``auto`` gets
    :func:`capcse.models.encoder.progress`'s automatic mode (a bar once encoding has run ~5 s)."""
    from capcse.models.encoder import on_terminal

    if setting in (True, "on", "true"):
        return True
    if setting in (False, "off", "false"):
        return False
    if setting in ("auto", None):
        return on_terminal()
    raise ConfigError(f"train.progress must be auto, on or off, got {setting!r}")


def check_precision(precision: str) -> None:
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"train.precision must be fp32, bf16 or fp16, got {precision!r}")


def check_train_switches(recipe: Recipe) -> None:
    """Reject bad ``train.precision`` / ``train.fast_dropout`` values before anything is loaded (they are
    read again where they take effect, after the model has loaded)."""
    check_precision(recipe.train.precision)
    wants_fast_dropout(recipe.train.fast_dropout, "cpu")
    validate_recipe(recipe)
    show_progress(recipe.train.progress)
    from capcse.models.heads import MLM_HEAD_INIT

    if recipe.loss.mlm_head_init not in MLM_HEAD_INIT:
        raise ConfigError(f"loss.mlm_head_init must be one of {', '.join(MLM_HEAD_INIT)}, "
                          f"got {recipe.loss.mlm_head_init!r}")


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
                                     gather_across_devices=loss_cfg.gather_across_devices,
                                     mlm_head_init=loss_cfg.mlm_head_init)
    return SimCSEObjective(model, loss, mlm_weight=loss_cfg.mlm_weight, mlm_probability=loss_cfg.mlm_probability,
                           gather_across_devices=loss_cfg.gather_across_devices, mlm_head_init=loss_cfg.mlm_head_init)


def training_arguments(recipe: Recipe, evaluate: bool, tokenizer=None):
    """The Trainer's arguments for ``recipe`` (``tokenizer``: the model's, for length grouping by token
    count). Under several processes the last incomplete batch is dropped, so every process runs the same
    number of steps (the sentence-transformers Trainer shards batches with ``even_batches=False``; an
    extra batch on one process would hang the collectives)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    t = recipe.train
    check_precision(t.precision)
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
        adam_epsilon=t.adam_epsilon,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,  # AdamW; fused kernel: 20 vs 89 ms per step on CPU (benchmarks/step_profile.py)
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
        dataloader_drop_last=world_size() > 1,
        use_cpu=use_cpu,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=recipe.eval.steps if evaluate else None,
        load_best_model_at_end=bool(evaluate and recipe.eval.load_best),
        metric_for_best_model=f"eval_{dev_task(recipe)}_dev_spearman" if evaluate else None,
        greater_is_better=True,
        disable_tqdm=not show_progress(t.progress),  # the Trainer's step bar (total, ETA)
    )
    if t.group_by_length:
        from functools import partial

        from capcse.train.batching import LengthGroupedBatchSampler

        # token counts when the tokenizer is known (the padded width of each batch), else characters
        kwargs["batch_sampler"] = (partial(LengthGroupedBatchSampler, tokenizer=tokenizer,
                                           max_length=recipe.model.max_length)
                                   if tokenizer is not None else LengthGroupedBatchSampler)
    return SentenceTransformerTrainingArguments(**kwargs)


def check_fresh_output(run_dir: Path, overwrite: bool, artefacts: tuple[str, ...], keep: tuple[str, ...] = ()) -> None:
    """Refuse to start a run in a non-empty folder unless ``overwrite``; then delete the earlier run's
    ``artefacts`` (glob patterns; stale checkpoints would otherwise be picked up by a later ``--resume``).
    Entries named in ``keep`` (e.g. a built corpus) neither count as content nor are deleted."""
    import shutil

    held = sorted(p.name for p in run_dir.iterdir() if p.name not in keep) if run_dir.is_dir() else []
    if not held:
        return
    if not overwrite:
        raise ConfigError(f"output dir {run_dir} is not empty ({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}): "
                          "continue that run with --resume, or replace it with --overwrite")
    for pattern in artefacts:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def complete_checkpoints(output_dir: Path, required: tuple[str, ...] = ()) -> list[Path]:
    """``checkpoint-<step>`` folders of a run, newest first, that were written completely: the Trainer
    writes ``trainer_state.json`` last (capcse's objective state comes after it, in ``on_save``), so a
    run killed while saving leaves a folder without it, which is skipped."""
    found = []
    for folder in Path(output_dir).glob("checkpoint-*"):
        step = folder.name.split("-", 1)[1]
        if folder.is_dir() and step.isdigit():
            found.append((int(step), folder))
    needed = ("trainer_state.json",) + tuple(required)
    out = []
    for _, folder in sorted(found, reverse=True):
        if all((folder / name).is_file() for name in needed):
            out.append(folder)
        else:
            logger.warning("%s is incomplete (interrupted while saving?): skipped", folder)
    return out


def resolve_resume(recipe: Recipe, resume: bool | str | None, required: tuple[str, ...] = ()) -> str | None:
    """``--resume``: True -> the newest complete ``checkpoint-*`` in the output dir; a path (or a folder name
    such as ``checkpoint-500``) -> that one, which must be a complete ``checkpoint-*`` folder of this run's
    output dir: the Trainer unpickles its ``optimizer.pt``/``scheduler.pt``/``rng_state.pth``, so they are read
    only from the run's own folder."""
    if not resume:
        return None
    if resume is True or resume == "latest":
        done = complete_checkpoints(recipe.output_dir, required) if recipe.output_dir.is_dir() else []
        if not done:
            raise ConfigError(f"--resume: no complete checkpoint-* folder in {recipe.output_dir}")
        return str(done[0])
    path = Path(resume)
    if not path.is_absolute() and not path.is_dir():
        path = recipe.output_dir / path
    own = recipe.output_dir.resolve()
    if not path.is_dir() or path.resolve().parent != own or not path.name.startswith("checkpoint-"):
        raise ConfigError(f"--resume {resume}: not a checkpoint-* folder of the run {recipe.output_dir} "
                          "(the Trainer loads pickled optimizer/scheduler/RNG state only from the run's own folder)")
    if path.resolve() not in [c.resolve() for c in complete_checkpoints(own, required)]:
        raise ConfigError(f"--resume {resume}: incomplete checkpoint (no trainer_state.json"
                          + (f" or {', '.join(required)}" if required else "") + ")")
    return str(path)


def objective_state(objective) -> dict[str, torch.Tensor]:
    """The objective's own trainable weights (e.g. the MLM head), which the Trainer does not checkpoint:
    it saves the model only. Without them a resumed run would restart the head from scratch."""
    return {k: v.detach().cpu().contiguous() for k, v in objective.state_dict().items() if not k.startswith("model.")}


def make_objective_checkpointer(objective):
    """A TrainerCallback writing :func:`objective_state` into every checkpoint folder."""
    from safetensors.torch import save_file
    from transformers import TrainerCallback

    class ObjectiveCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            tensors = objective_state(objective)
            if tensors and state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    tmp = folder / f".{OBJECTIVE_STATE}.tmp"
                    save_file(tensors, str(tmp))
                    os.replace(tmp, folder / OBJECTIVE_STATE)

    return ObjectiveCheckpoint()


def load_objective_state(objective, checkpoint: str) -> None:
    from safetensors.torch import load_file

    path = Path(checkpoint) / OBJECTIVE_STATE
    expected = objective_state(objective)
    if not expected:
        return
    if not path.is_file():
        raise ConfigError(f"--resume {checkpoint}: {OBJECTIVE_STATE} (the MLM head) is missing")
    objective.load_state_dict(load_file(str(path)), strict=False)


def dev_history(log_history: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """Every dev evaluation of the run from the Trainer's log (restored on resume, so a resumed run
    keeps the evaluations made before the interruption)."""
    key, prefix = f"eval_{task}_dev_spearman", f"eval_{task}_dev_"
    return [{"steps": int(e["step"]), "epoch": e.get("epoch"), "spearman": float(e[key]),
             **{k[len(prefix):]: float(v) for k, v in e.items() if k.startswith(prefix) and k != key}}
            for e in log_history if key in e]


def run_training(recipe: Recipe, *, resume: bool | str | None = None, log=print) -> TrainResult:
    """Train ``recipe``, save the final model (safetensors) with its model card, evaluate, report.

    Under ``torchrun``/``accelerate launch`` every process trains; only the main process writes the
    final model, the model card and the evaluation."""
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import set_seed

    from capcse.models.encoder import SentenceEncoder
    from capcse.models.heads import apply_inference_form, has_mlp_pooler
    from capcse.report.model_card import write_model_card
    from capcse.train.callbacks import STSDevEvaluator
    from capcse.train.data import load_train_dataset

    if recipe.train.torch_threads:
        torch.set_num_threads(recipe.train.torch_threads)
    task = dev_task(recipe)
    check_train_switches(recipe)
    main = is_main_process()
    set_seed(recipe.train.seed)
    out = recipe.output_dir
    out.mkdir(parents=True, exist_ok=True)
    if main and not (resume and (out / "recipe.yaml").is_file()):  # a resume keeps the run's record
        atomic_write_text(out / "recipe.yaml", dump_recipe(recipe))

    model = build_model(recipe)
    data_dir = recipe.data.data_dir or recipe.eval.data_dir
    dataset = load_train_dataset(recipe.data.train, fmt=recipe.data.format, columns=recipe.data.columns,
                                 limit=recipe.data.limit, data_dir=data_dir)
    if main:
        log(f"train data: {recipe.data.train} -> {len(dataset)} examples, columns {dataset.column_names}")
    args = training_arguments(recipe, evaluate=task is not None, tokenizer=model.tokenizer)
    batch_sampler = None
    if recipe.loss.name in ("mcse", "dalr"):  # issue 5: multimodal objectives mix image-caption batches in
        from capcse.train.multimodal import prepare_multimodal

        # Under several processes rank 0 fills the on-disk image-feature / teacher caches first; the
        # others then read them (no two processes write one cache).
        with args.main_process_first(desc="multimodal feature caches"):
            dataset, objective, batch_sampler = prepare_multimodal(recipe, model, dataset, log=log)
    else:
        objective = build_objective(recipe, model)
        if main and getattr(objective, "mlm_head", None) is not None:
            log(f"MLM head: {objective.mlm_head_note}")
    checkpoint = resolve_resume(recipe, resume, (OBJECTIVE_STATE,) if objective_state(objective) else ())
    if checkpoint:
        load_objective_state(objective, checkpoint)
        if main:
            log(f"resuming from {checkpoint}")

    evaluator = None
    if task is not None:
        evaluator = STSDevEvaluator((task,), "dev", data_dir=recipe.eval.data_dir, variant=recipe.eval.variant,
                                    pooler=recipe.model.pooler, mlp_only_train=recipe.model.mlp_only_train,
                                    name=f"{task}_dev",
                                    show_progress_bar=None if recipe.train.progress == "auto"
                                    else show_progress(recipe.train.progress))

    if batch_sampler is not None:  # issue 5: MCSE's interleaving of text-only and image-caption batches
        args.batch_sampler = batch_sampler
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=objective,
                                         evaluator=evaluator, callbacks=[make_objective_checkpointer(objective)])
    truncate_training_batches(trainer, recipe.model.max_length)
    if main:
        log(f"lengths: training batches cut at {recipe.model.max_length} tokens; dev evaluation and the saved "
            f"model use {model.max_seq_length}")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - t0
    steps = int(trainer.state.global_step)

    history = dev_history(trainer.state.log_history, task) if task else []
    best = max(history, key=lambda h: h["spearman"]) if history else None
    best_loaded = bool(best is not None and args.load_best_model_at_end and trainer.state.best_model_checkpoint)
    if best is not None and best_loaded and main:
        log(f"best {task} dev Spearman {best['spearman']:.2f} at step {best['steps']} (loaded)")

    model = trainer.model
    model_dir = out / "model"
    losses = [{"step": int(e["step"]), "loss": float(e["loss"])} for e in trainer.state.log_history if "loss" in e]
    res = TrainResult(out, model_dir, steps, len(dataset), seconds, best, history, None, losses,
                      max_seq_length=model.max_seq_length, best_loaded=best_loaded)
    if not trainer.is_world_process_zero():
        return res
    mlp_in_pooler = has_mlp_pooler(model)
    apply_inference_form(model, recipe.model.pooler, recipe.model.mlp_only_train)
    model.save(str(model_dir), safe_serialization=True)

    test_table, correlation_tables = None, {}
    final = [t for t in (recipe.eval.final or []) if t not in ("none", "")]
    if final:
        from capcse.evaluation.suite import run_evaluation
        from capcse.report import write_report

        encoder = SentenceEncoder(model, name=str(model_dir), device=model.device)
        result = run_evaluation(encoder, ",".join(final), recipe.eval.mode, data_dir=recipe.eval.data_dir,
                                variant=recipe.eval.variant, name=recipe.name)
        write_report(result, out / "eval")
        res.test = result.to_dict()
        if result.sts is not None:
            test_table = {r.name: r.spearman for r in result.sts.tasks.values()}
            if result.sts_avg() is not None:
                test_table["Avg."] = result.sts_avg()
            correlation_tables = {r.name: dict(r.scores) for t, r in result.sts.tasks.items() if t == "korsts"}
    write_model_card(model_dir, recipe=recipe.to_dict(), steps=steps, train_examples=len(dataset),
                     best_dev=best, test_table=test_table, dev_history=history,
                     correlation_tables=correlation_tables, mlp_in_pooler=mlp_in_pooler,
                     max_seq_length=model.max_seq_length, best_loaded=best_loaded)
    atomic_write_json(out / "train_summary.json", res.to_dict())
    return res
