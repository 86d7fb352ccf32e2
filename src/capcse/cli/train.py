"""capcse train [RECIPE] [--set key=value ...] [--output RUN] [--resume [CHECKPOINT]] [--overwrite]

A new run refuses a non-empty output folder unless ``--overwrite``. ``--resume`` continues a run exactly as it
was started: the recipe is the run's saved ``RUN/recipe.yaml`` (never rebuilt from ``configs/``, never
rewritten); ``--set`` on resume is allowed only for the keys of :data:`RESUME_SAFE`, which do not change what is
trained. Every resume is appended to ``RUN/resumes.jsonl`` (checkpoint, overrides, time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: ``--set`` keys that a resume may change: they extend the run, change its logging, evaluation, saving or
#: where it runs, not the model, data, loss or optimiser it trains (``data.data_dir`` only says where the same
#: data sets are found on this machine). ``train.max_steps``/``train.epochs`` extend the run; the schedule's
#: total then follows the new length from the resumed step on.
RESUME_SAFE = (
    "train.max_steps", "train.epochs", "train.logging_steps", "train.report_to", "train.dataloader_num_workers",
    "train.torch_threads", "train.device", "train.save_steps", "train.save_total_limit", "train.output_dir",
    "data.data_dir", "eval.*",
)
#: What a training run writes into its output folder; ``--overwrite`` removes these (and nothing else).
RUN_ARTEFACTS = ("checkpoint-*", "model", "eval", "runs", "recipe.yaml", "train_summary.json", "resumes.jsonl")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe (configs/*.yaml), save the model, evaluate it",
                       description="Train a contrastive recipe with the sentence-transformers Trainer, save "
                                   "the model (SentenceTransformer / AutoModel loadable), evaluate, report.")
    p.add_argument("recipe", nargs="?",
                   help="recipe name in configs/ (e.g. simcse-unsup-bert-base) or a YAML path; optional with "
                        "--resume --output RUN (the run's saved recipe.yaml is used; if given it must match)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.batch_size=32 (repeatable); on --resume only "
                        + ", ".join(RESUME_SAFE))
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue the run in the output dir from its latest complete checkpoint, or from "
                        "CHECKPOINT (a checkpoint-<step> folder of that run)")
    p.add_argument("--output", help="output directory (same as --set train.output_dir=...)")
    p.add_argument("--overwrite", action="store_true",
                   help="train into a non-empty output dir, first deleting what an earlier run wrote there "
                        f"({', '.join(RUN_ARTEFACTS)})")
    p.add_argument("--data-dir", help="data folder (same as --set data.data_dir=... eval.data_dir=...)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    p.set_defaults(func=run)


def _path_overrides(args: argparse.Namespace) -> list[str]:
    out = [f"train.output_dir={args.output}"] if args.output else []
    if args.data_dir:
        out += [f"data.data_dir={args.data_dir}", f"eval.data_dir={args.data_dir}"]
    return out


def resume_recipe(args: argparse.Namespace):
    """The recipe of the run to resume: its saved ``recipe.yaml`` with the resume-safe overrides."""
    from capcse.train.recipe import resume_run

    return resume_run(args.output, args.recipe, list(args.overrides) + _path_overrides(args), RESUME_SAFE,
                      checkpoint=args.resume if isinstance(args.resume, str) else None)


def check_train_file(recipe) -> None:
    """An empty or undecodable ``data.train`` file fails in seconds, before the model loads (the loader checks
    it again; one streaming pass, 16 ms for the 1.28 MB wiki1m prefix)."""
    from capcse.data._text import check_text_file

    path = Path(recipe.data.train).expanduser()
    if path.is_file():
        check_text_file(path, what="training text")


def record_resume(run_dir: Path, resume, overrides: list[str]) -> None:
    """Append this resume to ``RUN/resumes.jsonl`` (the saved recipe.yaml stays the record of the start)."""
    import json
    import time

    from capcse.io import atomic_write_text

    log = run_dir / "resumes.jsonl"
    old = log.read_text(encoding="utf-8") if log.is_file() else ""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "checkpoint": resume if isinstance(resume, str) else "latest",
             "overrides": overrides}
    atomic_write_text(log, old + json.dumps(entry) + "\n")


def run(args: argparse.Namespace) -> int:
    import json

    from capcse.errors import ConfigError
    from capcse.train.recipe import dump_recipe, load_recipe

    if args.resume:
        if args.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other")
        recipe, run_dir = resume_recipe(args)
    else:
        if not args.recipe:
            raise ConfigError("give a recipe (a name in configs/ or a YAML path), or --resume --output RUN")
        recipe = load_recipe(args.recipe, list(args.overrides) + _path_overrides(args))
        run_dir = recipe.output_dir
    if args.dry_run:
        print(dump_recipe(recipe), end="")
        return 0
    from capcse.train.trainer import is_main_process, resolve_resume, run_training

    check_train_file(recipe)
    if args.resume:
        resolve_resume(recipe, args.resume)  # a bad CHECKPOINT fails here, before anything is loaded
        if is_main_process():
            record_resume(run_dir, args.resume, list(args.overrides))
    elif is_main_process():
        from capcse.train.trainer import check_fresh_output

        check_fresh_output(run_dir, args.overwrite, RUN_ARTEFACTS)
    result = run_training(recipe, resume=args.resume)
    if not is_main_process():  # under torchrun / accelerate launch: one report, from rank 0
        return 0
    summary = {k: v for k, v in result.to_dict().items() if k not in ("test", "losses", "dev_history")}
    if result.losses:
        summary["last_loss"] = result.losses[-1]
    print(json.dumps(summary, indent=2))
    if result.test:
        scores = {name: r["cosine_spearman"] for name, r in result.test["results"].items()
                  if isinstance(r, dict) and "cosine_spearman" in r}
        if scores:
            print("test cosine Spearman: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        if result.test.get("avg") is not None:
            print(f"test avg: {result.test['avg']:.2f}")
    print(f"model: {result.model_dir}")
    return 0
