"""capcse pretrain RECIPE [--set key=value ...] [--output DIR] [--resume] [--overwrite]"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="masked-LM pretraining of a BERT-style encoder (configs/mlm-*.yaml)",
                       description="Masked-language-model pretraining through the transformers Trainer (run_mlm's "
                                   "block packing and masking), from scratch or continued; resumable; saves a "
                                   "BertForMaskedLM folder that capcse train starts from.")
    p.add_argument("recipe", nargs="?", help="recipe name in configs/ (e.g. mlm-bert-mini) or a YAML path; "
                   "with --resume it may be left out (the run's own recipe.yaml is used)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value (repeatable)")
    p.add_argument("--output", help="output directory (same as --set train.output_dir=...)")
    p.add_argument("--data-dir", help="data folder (same as --set data.data_dir=...)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the output folder from its newest complete checkpoint, with the "
                        "recipe it was started with (only --set of: train.max_steps, logging/saving/eval "
                        "frequency, device, threads)")
    p.add_argument("--overwrite", action="store_true", help="start over in a non-empty output folder")
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    p.add_argument("--export", nargs=2, metavar=("MODEL", "DEST"),
                   help="instead of training: copy a pretrained model folder to DEST with bf16 weights (loaded as "
                        "fp32) and their checksum in the model card (how the shipped encoders are made)")
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace):
    from capcse.errors import ConfigError
    from capcse.train.pretrain import RESUME_SAFE, PretrainRecipe, check_recipe, load_pretrain_recipe
    from capcse.train.recipe import resume_run

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    if not args.resume:
        if not args.recipe:
            raise ConfigError("a recipe is needed (e.g. capcse pretrain mlm-bert-mini), or --resume with --output")
        if args.output:
            overrides.append(f"train.output_dir={args.output}")
        return load_pretrain_recipe(args.recipe, overrides)
    recipe, _ = resume_run(args.output, args.recipe, overrides, RESUME_SAFE, kind=PretrainRecipe,
                           command="capcse pretrain")
    check_recipe(recipe)
    return recipe


def run(args: argparse.Namespace) -> int:
    import json

    from capcse.train.pretrain import prepare_output, run_pretraining
    from capcse.train.recipe import dump_recipe

    if args.export:
        from capcse.train.pretrain import export_model

        info = export_model(*args.export)
        print(json.dumps({"exported": args.export[1], **info}, indent=2))
        return 0
    recipe = resolve(args)
    if args.dry_run:
        print(dump_recipe(recipe), end="")
        return 0
    prepare_output(recipe, resume=args.resume, overwrite=args.overwrite)
    result = run_pretraining(recipe, resume=args.resume)
    summary = {k: v for k, v in result.to_dict().items() if k not in ("curve", "losses")}
    if result.curve:
        summary["last_eval"] = result.curve[-1]
    print(json.dumps(summary, indent=2))
    print(f"model: {result.model_dir}")
    return 0
