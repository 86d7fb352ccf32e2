"""capcse report compare LABEL=RESULTS [LABEL=RESULTS ...] --output DIR"""

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
    c.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from capcse.errors import CapcseError
    from capcse.report.compare import compare_markdown, compare_runs, load_payload

    runs = {}
    for item in args.runs:
        if "=" not in item:
            raise CapcseError(f"expected LABEL=RESULTS, got {item!r}")
        label, path = item.split("=", 1)
        runs[label] = path
    written = compare_runs(runs, args.output)
    print(compare_markdown({k: load_payload(v) for k, v in runs.items()}))
    print(f"report: {written['html']}")
    return 0
