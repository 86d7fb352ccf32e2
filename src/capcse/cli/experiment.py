"""`capcse experiment SPEC`: rows x seeds as subprocesses (resumable), then the table with mean ± std."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "run an experiment spec (experiments/*.yaml): rows x seeds, resumable, mean ± std table"

EPILOG = """\
SPEC: a name in experiments/ (e.g. simcse-bert-base) or a YAML path; docs/experiments.md describes the format.
Every run is `capcse train` + `capcse eval` (or the row's commands) in OUT/runs/<row>-s<seed>/ with its log;
a run with OUT/runs/<run>/done.json is finished and skipped. The table: OUT/aggregate.{md,json,png}.
  capcse experiment simcse-bert-base --dry-run              # resolve every run, print the plan
  capcse experiment simcse-bert-base --profile cpu --jobs 2 --threads 1
  capcse experiment simcse-bert-base --profile cpu --aggregate-only
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("experiment", help=HELP, description=HELP, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="experiment spec: a name in experiments/ or a YAML path")
    p.add_argument("--profile", default=None, help="a profile of the spec (e.g. cpu: smaller model, data, steps)")
    p.add_argument("--out", default=None, help="experiment folder (default: outputs/experiments/<name>[-<profile>])")
    p.add_argument("--data-dir", default=None, help="data folder (default: $CAPCSE_DATA, then ../shared/data)")
    p.add_argument("--only", nargs="+", metavar="ROW", default=None,
                   help="run only these rows (and the rows they depend on)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="replace the spec's seeds")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe override for every train row (e.g. train.max_steps=2000; repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch / OpenMP threads per run (default: CPUs // jobs, at least 1)")
    p.add_argument("--models-from", metavar="DIR", default=None,
                   help="do not train: evaluate the model each train run already has in DIR (another profile's "
                        "experiment folder whose runs trained with the same recipe, e.g. for a profile that only "
                        "changes the evaluation)")
    p.add_argument("--dry-run", action="store_true", help="print every run's commands and what is missing here")
    p.add_argument("--aggregate-only", action="store_true", help="only tabulate the finished runs")
    p.add_argument("--no-plot", action="store_true", help="skip aggregate.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from capcse.errors import ConfigError
    from capcse.experiment import Context, aggregate, load_spec, markdown, plan_runs, run_experiment, select
    from capcse.experiment.spec import default_data_dir, with_overrides
    from capcse.experiment.aggregate import write_aggregate

    spec = with_overrides(select(load_spec(args.spec, args.profile), args.only, args.seeds), args.overrides)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    out = Path(args.out or f"outputs/experiments/{spec.name}" + (f"-{spec.profile}" if spec.profile else ""))
    out = out.resolve()
    data_dir = default_data_dir(args.data_dir)
    models_from = Path(args.models_from).resolve() if args.models_from else None
    if models_from is not None and models_from == out:
        raise ConfigError(f"--models-from {args.models_from} is this experiment's own folder")

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.dry_run:
        from capcse.experiment.plan import describe

        ctx = Context(out, data_dir or "${data}", threads, models_from)
        plan = describe(spec, ctx, plan_runs(spec, out))
        print("\n".join(plan.lines))
        if data_dir is None:
            print("  missing: the data folder: give --data-dir or set CAPCSE_DATA")
        if plan.errors:
            raise ConfigError(f"{spec.path}: {len(plan.errors)} run(s) do not resolve: "
                              + "; ".join(f"{c.name}: {c.detail}" for c in plan.errors[:3]))
        return 0
    ctx = Context(out, data_dir, threads, models_from)
    runs = plan_runs(spec, out) if args.aggregate_only else run_experiment(spec, ctx, jobs=args.jobs, log=log)
    payload = aggregate(spec, runs)
    if models_from is not None:
        payload["models_from"] = str(models_from)
    written = write_aggregate(payload, out, plots=not args.no_plot)
    print()
    print(markdown(payload), end="")
    print(f"\ntable: {written['md']}  json: {written['json']}" + (f"  plot: {written['png']}" if "png" in written
                                                                    else ""), file=sys.stdout)
    return 0
