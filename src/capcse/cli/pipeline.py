"""capcse pipeline CONFIG [--set key=value ...]: caption -> filter -> SimCSE -> STS -> report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="caption images -> filter -> unsupervised SimCSE -> STS -> report",
                       description="Run a caption-SimCSE pipeline recipe (configs/caption-simcse-pipeline*.yaml). "
                                   "Finished steps are skipped, so re-running continues an interrupted pipeline.")
    p.add_argument("config", help="pipeline recipe name in configs/ or a YAML path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value, e.g. --set 'train.set=[train.max_steps=100]' or filter.min_chars=30")
    p.add_argument("--output", help="output directory (same as --set output_dir=...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from capcse.caption.pipeline import load_pipeline, run_pipeline

    overrides = list(args.overrides) + ([f"output_dir={args.output}"] if args.output else [])
    cfg = load_pipeline(args.config, overrides)
    summary = run_pipeline(cfg)
    print(f"pipeline report: {cfg.output_dir / 'report.md'}")
    test = (summary.get("train") or {}).get("test") or {}
    if test.get("avg") is not None:
        print(f"STS avg: {test['avg']:.2f}")
    return 0
