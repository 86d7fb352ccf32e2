"""capcse report compare LABEL=RESULTS [LABEL=RESULTS ...] --output DIR [--allow-mismatch]
capcse report mlm-curve EXPERIMENT PRETRAIN_RUN --output DIR [--column Avg.]"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="compare evaluation runs (e.g. before/after training)")
    rsub = p.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    rsub.required = True
    c = rsub.add_parser("compare", help="side-by-side STS/transfer table, plot and HTML of several runs")
    c.add_argument("runs", nargs="+", metavar="LABEL=RESULTS",
                   help="a label and a results.json (or the folder holding it), e.g. before=outputs/main/before")
    c.add_argument("--output", required=True, help="folder for comparison.md/.json/.png and report.html")
    c.add_argument("--allow-mismatch", action="store_true",
                   help="compare runs evaluated differently (mode, task set, variant, inference length) under a "
                        "NOT COMPARABLE banner instead of refusing")
    c.set_defaults(func=run_compare)
    m = rsub.add_parser("mlm-curve", help="SimCSE from pretraining snapshots against held-out MLM accuracy",
                        description="Join an experiment whose rows are named <kind>-<step> (raw-500, unsup-500, "
                                    "sup-500, ...: experiments/simcse-vs-mlm.yaml) with the held-out masked-token "
                                    "accuracy of the capcse pretrain run at those steps: table and plot.")
    m.add_argument("experiment", help="the experiment folder (its aggregate.json) or the aggregate.json")
    m.add_argument("pretrain_run", help="the capcse pretrain output folder (pretrain_summary.json or checkpoints)")
    m.add_argument("--output", required=True, help="folder for mlm_curve.md/.json/.png")
    m.add_argument("--column", default="Avg.", help="the table column to plot (default Avg.)")
    m.set_defaults(func=run_mlm_curve)


def run_compare(args: argparse.Namespace) -> int:
    from capcse.errors import CapcseError
    import sys

    from capcse.report.compare import compare_markdown, compare_runs, load_payload, mismatches

    runs = {}
    for item in args.runs:
        if "=" not in item:
            raise CapcseError(f"expected LABEL=RESULTS, got {item!r}")
        label, path = item.split("=", 1)
        runs[label] = path
    written = compare_runs(runs, args.output, allow_mismatch=args.allow_mismatch)
    payloads = {k: load_payload(v) for k, v in runs.items()}
    print(compare_markdown(payloads))
    for problem in mismatches(payloads)[0]:
        print(f"capcse report compare: warning: NOT COMPARABLE: {problem}", file=sys.stderr)
    print(f"report: {written['html']}")
    return 0


def run_mlm_curve(args: argparse.Namespace) -> int:
    from capcse.report.mlm_curve import write_mlm_curve

    written = write_mlm_curve(args.experiment, args.pretrain_run, args.output, args.column)
    print(written["md"].read_text(encoding="utf-8"), end="")
    print("written: " + "  ".join(str(p) for p in written.values()))
    return 0
