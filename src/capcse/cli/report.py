"""capcse report compare LABEL=RESULTS [LABEL=RESULTS ...] --output DIR [--allow-mismatch]"""

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
