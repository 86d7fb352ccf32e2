"""capcse train CONFIG_OR_RECIPE [--set key=value ...] [--resume [CHECKPOINT]]"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe (configs/*.yaml), save the model, evaluate it",
                       description="Train a contrastive recipe with the sentence-transformers Trainer, save "
                                   "the model (SentenceTransformer / AutoModel loadable), evaluate, report.")
    p.add_argument("recipe", help="recipe name in configs/ (e.g. simcse-unsup-bert-base) or a YAML path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.batch_size=32 (repeatable)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="resume from the latest checkpoint in the output dir, or from CHECKPOINT")
    p.add_argument("--output", help="output directory (same as --set train.output_dir=...)")
    p.add_argument("--data-dir", help="data folder (same as --set data.data_dir=... eval.data_dir=...)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from capcse.train.recipe import dump_recipe, load_recipe

    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"train.output_dir={args.output}")
    if args.data_dir:
        overrides += [f"data.data_dir={args.data_dir}", f"eval.data_dir={args.data_dir}"]
    recipe = load_recipe(args.recipe, overrides)
    if args.dry_run:
        print(dump_recipe(recipe), end="")
        return 0
    from capcse.train.trainer import is_main_process, run_training

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
