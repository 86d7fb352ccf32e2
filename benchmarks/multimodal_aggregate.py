"""Tabulate benchmarks/multimodal_experiment.sh: mean ± sample std over seeds of every STS column.

    python benchmarks/multimodal_aggregate.py [test|dev] [--out outputs/mm/exp]

Prints a markdown table (one row per recipe, in the order simcse, mcse, dalr, dalr-no-*) and a last
line ``RESULT multimodal_experiment ratio=<dalr mean Avg. / simcse mean Avg.> target=1``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import statistics as st

ORDER = ["simcse", "mcse", "dalr", "dalr-no-grounding", "dalr-no-soft_label", "dalr-no-global_alignment",
         "dalr-no-ranking"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="test", choices=("test", "dev"))
    ap.add_argument("--out", default="outputs/mm/exp")
    args = ap.parse_args()
    rows = collections.defaultdict(list)
    for f in sorted(glob.glob(os.path.join(args.out, f"*-s*/eval-{args.mode}/results.json"))):
        cfg = os.path.basename(os.path.dirname(os.path.dirname(f))).rsplit("-s", 1)[0]
        rows[cfg].append(json.load(open(f)))
    present = [c for c in ORDER if c in rows]
    if not present:
        raise SystemExit(f"no results under {args.out}/*-s*/eval-{args.mode}/")
    keys = list(rows[present[0]][0]["results"].keys())
    print("| recipe | " + " | ".join(keys) + " | Avg. |")
    print("|---" + "|---:" * (len(keys) + 1) + "|")
    means = {}
    for cfg in present:
        cells = []
        for t in keys + ["avg"]:
            vals = [r["avg"] if t == "avg" else r["results"][t]["cosine_spearman"] for r in rows[cfg]]
            m = st.mean(vals)
            cells.append(f"{m:.2f} ± {st.stdev(vals):.2f}" if len(vals) > 1 else f"{m:.2f}")
            if t == "avg":
                means[cfg] = m
        print(f"| {cfg} (seeds: {len(rows[cfg])}) | " + " | ".join(cells) + " |")
    ratio = means["dalr"] / means["simcse"] if "dalr" in means and "simcse" in means else float("nan")
    figures = " ".join(f"{c.replace('-', '_')}_avg={means[c]:.2f}" for c in present)
    print(f"RESULT multimodal_experiment ratio={ratio:.4f} target=1 mode={args.mode} {figures}")


if __name__ == "__main__":
    main()
