"""Tabulate benchmarks/clippings_experiment.sh: test ARI / pairwise F1 / purity x100, mean ± sample std.

    python benchmarks/clippings_aggregate.py [--out outputs/clippings]

Rows: Jaccard and the frozen towers ("none", one build so a single value), then self-supervised and
supervised heads over the seeds, each for the visual, language and multimodal record embeddings.
Last line: ``RESULT clippings ratio=<supervised multimodal ARI / Jaccard ARI> target=1``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics as st

ROW_NAMES = {"image": "visual", "text": "language", "multimodal": "multimodal", "jaccard": "Jaccard"}


def _cell(vals: list[float]) -> str:
    return f"{st.mean(vals):.1f} ± {st.stdev(vals):.1f}" if len(vals) > 1 else f"{vals[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/clippings")
    args = ap.parse_args()
    groups = {"none": [os.path.join(args.out, "none", "results.json")]}
    for kind in ("selfsup", "supervised"):
        groups[kind] = sorted(glob.glob(os.path.join(args.out, f"{kind}-s*", "results.json")))
    table = {}
    for kind, files in groups.items():
        for f in files:
            if not os.path.exists(f):
                continue
            res = json.load(open(f))
            for row in res["rows"]:
                name = row["name"].split(":")[0].split(" ")[0]
                key = ("–" if name == "jaccard" else kind, ROW_NAMES.get(name, name))
                table.setdefault(key, []).append(row)
    print("| training | row | ARI | pairwise F1 | purity | threshold | im_wt | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    order = [("–", "Jaccard")] + [(k, r) for k in ("none", "selfsup", "supervised")
                                  for r in ("visual", "language", "multimodal")]
    means = {}
    for key in order:
        rows = table.get(key)
        if not rows:
            continue
        ari = [100 * r["test"]["ari"] for r in rows]
        means[key] = st.mean(ari)
        im = ", ".join(str(r.get("im_wt")) for r in rows) if key[1] == "multimodal" else "–"
        thr = st.mean(r["threshold"] for r in rows)
        print(f"| {key[0]} | {key[1]} | {_cell(ari)} | {_cell([100 * r['test']['f1'] for r in rows])} | "
              f"{_cell([100 * r['test']['purity'] for r in rows])} | {thr:.3f} | {im} | {len(rows)} |")
    sup, jac = means.get(("supervised", "multimodal")), means.get(("–", "Jaccard"))
    figures = " ".join(f"{k[0]}_{k[1]}={v:.1f}".replace("–_", "") for k, v in means.items())
    print(f"RESULT clippings ratio={(sup / jac) if sup and jac else float('nan'):.3f} target=1 {figures}")


if __name__ == "__main__":
    main()
