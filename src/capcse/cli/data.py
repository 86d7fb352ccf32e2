"""`capcse data`: list the registered data sets with their verified counts, or fetch one."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="list, verify and fetch the data sets capcse knows",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    p_list = sub.add_parser("list", help="each data set: found?, path, counts verified against the expected ones")
    p_list.add_argument("--data-dir", help="a data root searched first (then CAPCSE_DATA, then the cache)")
    p_list.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p_list.set_defaults(func=_list)

    p_get = sub.add_parser("get", help="find a data set (downloading it into the cache if needed); print its path")
    p_get.add_argument("name", help="a registered data set, e.g. stsb, sts12, korsts, wiki1m")
    p_get.add_argument("--variant", help="raw | senteval for the STS sets (default: the data set's default)")
    p_get.add_argument("--data-dir", help="a data root searched first (then CAPCSE_DATA, then the cache)")
    p_get.add_argument("--no-download", action="store_true", help="only look locally")
    p_get.set_defaults(func=_get)


def _fmt_counts(row: dict) -> str:
    counts, expected = row["counts"], row["expected"]
    if not counts:
        return ", ".join(f"{k} -/{v:,}" for k, v in expected.items())
    keys = list(expected) + [k for k in counts if k not in expected]
    parts = []
    for k in keys:
        got, want = counts.get(k), expected.get(k)
        got_s = "-" if got is None else f"{got:,}"
        parts.append(f"{k} {got_s}/{want:,}" if want is not None else f"{k} {got_s}")
    return ", ".join(parts)


def render_table(rows: list[dict]) -> str:
    """The `capcse data list` table (plain text, aligned columns)."""
    header = ("name", "variant", "found", "status", "counts (found/expected)", "path")
    body = [
        (r["name"], r["variant"], "yes" if r["found"] else "no", r["status"], _fmt_counts(r), r["path"] or "-")
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *body]:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths)]
        lines.append("  ".join(cells + [str(row[-1])]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths) + "  ----")
    notes = [f"{r['name']} ({r['variant']}): {r['note']}" for r in rows
             if r["found"] and r["note"] and r["status"] != "ok"]
    if notes:
        lines.append("")
        lines += ["notes:"] + [f"  {n}" for n in notes]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from capcse.data.registry import data_roots
    from capcse.data.resolve import list_datasets

    rows = list_datasets(args.data_dir)
    n_bad = sum(r["found"] and not r["ok"] for r in rows)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print("data roots searched: " + ", ".join(str(r) for r in data_roots(args.data_dir)))
        print(render_table(rows))
        n_found = sum(r["found"] for r in rows)
        print(f"\n{n_found} of {len(rows)} data set variants found; {n_bad} found with problems")
    return 1 if n_bad else 0


def _get(args: argparse.Namespace) -> int:
    from capcse.data.resolve import locate

    loc = locate(args.name, data_dir=args.data_dir, download=not args.no_download, variant=args.variant)
    print(loc.path)
    return 0
