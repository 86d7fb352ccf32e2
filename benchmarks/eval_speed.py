"""Evaluation speed: capcse's STS suite vs sentence-transformers' EmbeddingSimilarityEvaluator.

The full 7-task STS suite of the SimCSE table (STS12-16 with all their subsets, STS-B test, SICK-R
test), on the raw (untokenised, cased) text by default, with the same model in the same process:

* anchor: ``EmbeddingSimilarityEvaluator`` (sentence-transformers' own evaluator, its defaults:
  batch size 16, cosine) run on every subset, and -- for STS12-16 -- once more on the concatenation of
  the subsets, which is how SimCSE's 'all' number is obtained with that evaluator. STS-B and SICK-R
  are one evaluator each. The model is ``SentenceTransformer`` -- the very object capcse's encoder
  wraps (same weights).
* capcse: ``capcse.evaluation.evaluate_sts`` with ``capcse.models.load_encoder``: every unique
  sentence of the suite encoded once, then all 8 correlations of every subset and aggregation.

Both sides must agree: every cosine Spearman (per subset and 'all') to 1e-4. Where a subset has tied
cosines (pairs of identical sentences, cosine exactly 1 -- STS12 SMTeuroparl has 52), the two cannot
agree exactly: sentence-transformers ranks those pairs by float32 rounding noise (values like
1.0000002), capcse ties them (cosine rounded to 1e-6, see ``capcse.evaluation.sts``). Such subsets
are listed with their tie count and their difference, and checked separately from the others.
The last line is ``RESULT eval_speed ratio=<capcse wall / anchor wall> target=0.5``.

    .venv/bin/python benchmarks/eval_speed.py            # full suite (~minutes on 2 CPU cores)
    .venv/bin/python benchmarks/eval_speed.py --quick    # first 60 pairs of every subset
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
MULTI = ("sts12", "sts13", "sts14", "sts15", "sts16")
TOL = 1e-4


def _default_data_dir() -> str | None:
    env = os.environ.get("CAPCSE_DATA")
    if env:
        return env
    cand = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return str(cand) if cand.is_dir() else None


def load_suite(data_dir, variant: str, limit: int | None):
    from capcse.data import STSData, load_sts

    suite = {}
    for task in TASKS:
        subsets = load_sts(task, "test", data_dir=data_dir, variant=variant)
        if limit:
            subsets = {k: STSData(d.name, d.sentences1[:limit], d.sentences2[:limit], d.scores[:limit], d.source)
                       for k, d in subsets.items()}
        suite[task] = ("test", subsets)
    return suite


def run_anchor(model, suite) -> tuple[float, dict, float]:
    """sentence-transformers' evaluator per subset (+ the concatenation for STS12-16)."""
    import numpy as np
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    scores = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for task, (_split, subsets) in suite.items():
        for name, d in subsets.items():
            ev = EmbeddingSimilarityEvaluator(d.sentences1, d.sentences2, d.scores.tolist(), write_csv=False,
                                              similarity_fn_names=["cosine"])
            scores[(task, name)] = 100 * ev(model)["spearman_cosine"]
        if task in MULTI:
            s1 = [s for d in subsets.values() for s in d.sentences1]
            s2 = [s for d in subsets.values() for s in d.sentences2]
            gold = np.concatenate([d.scores for d in subsets.values()]).tolist()
            ev = EmbeddingSimilarityEvaluator(s1, s2, gold, write_csv=False, similarity_fn_names=["cosine"])
            scores[(task, "all")] = 100 * ev(model)["spearman_cosine"]
    return time.perf_counter() - t0, scores, time.process_time() - c0


def run_capcse(encoder, suite, batch_size) -> tuple[float, dict, dict, object, float]:
    """capcse's evaluator; also returns the number of tied cosine values of every scored set."""
    import numpy as np

    from capcse.evaluation import evaluate_sts

    t0, c0 = time.perf_counter(), time.process_time()
    res = evaluate_sts(encoder, datasets=suite, batch_size=batch_size)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    scores, ties = {}, {}
    for task, r in res.tasks.items():
        for name, sc in r.subsets.items():
            scores[(task, name)] = sc["cosine_spearman"]
            pred = r.predictions[name]
            ties[(task, name)] = len(pred) - len(np.unique(pred))
        if task in MULTI:
            scores[(task, "all")] = r.spearman
            pred = np.concatenate(list(r.predictions.values()))
            ties[(task, "all")] = len(pred) - len(np.unique(pred))
    return wall, scores, ties, res, cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="capcse model alias, folder or hub id")
    ap.add_argument("--data-dir", default=_default_data_dir())
    ap.add_argument("--variant", choices=("raw", "senteval"), default="raw")
    ap.add_argument("--batch-size", type=int, default=None, help="capcse encoding batch (default: encoder's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="first --limit pairs of every subset")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--anchor-first", action="store_true", help="time the anchor before capcse")
    args = ap.parse_args(argv)

    import torch

    from capcse.models import load_encoder

    suite = load_suite(args.data_dir, args.variant, args.limit if args.quick else None)
    n_pairs = sum(len(d) for _s, subs in suite.values() for d in subs.values())
    encoder = load_encoder(args.model, device=args.device, dtype="fp32")
    model = encoder.model  # the SentenceTransformer inside: the anchor uses the very same weights
    print(f"model {args.model}; {args.variant} text; {n_pairs} pairs in {len(suite)} tasks; "
          f"torch threads {torch.get_num_threads()}; quick={args.quick}", flush=True)
    warm = ["A warm-up sentence.", "Another one, a little longer than the first."]
    encoder.encode(warm)
    model.encode(warm)

    if args.anchor_first:
        anchor_wall, ref, anchor_cpu = run_anchor(model, suite)
        capcse_wall, ours, ties, res, capcse_cpu = run_capcse(encoder, suite, args.batch_size)
    else:
        capcse_wall, ours, ties, res, capcse_cpu = run_capcse(encoder, suite, args.batch_size)
        anchor_wall, ref, anchor_cpu = run_anchor(model, suite)

    diffs = {k: abs(ours[k] - ref[k]) / 100 for k in ref}  # in correlation units
    untied = {k: d for k, d in diffs.items() if ties[k] == 0}
    tied = {k: d for k, d in diffs.items() if ties[k] > 0}
    worst = max(untied, key=untied.get)
    agree = all(d < TOL for d in untied.values())
    print(f"\n{'task':8} {'subset':20} {'capcse':>9} {'s-t':>9} {'|diff|':>9} {'tied':>5}")
    for (task, name), v in ref.items():
        print(f"{task:8} {name:20} {ours[(task, name)]:9.4f} {v:9.4f} {diffs[(task, name)]:9.2e} "
              f"{ties[(task, name)]:5d}")
    table = res.table()
    print("\n" + " | ".join(f"{k} {v:.2f}" for k, v in table.items()) + f" | Avg. {res.avg:.2f}")
    emb = res.embeddings
    print(f"\ncapcse: {capcse_wall:.1f} s ({emb.n_requested} sentences, {len(emb.texts)} unique, "
          f"encode {emb.seconds:.1f} s); anchor: {anchor_wall:.1f} s. "
          f"CPU time (all threads): capcse {capcse_cpu:.1f} s, anchor {anchor_cpu:.1f} s")
    print(f"{len(untied)} scores without tied cosines: max |diff| {untied[worst]:.2e} at {worst}; "
          f"agree to {TOL}: {agree}")
    tied_max = max(tied.values()) if tied else 0.0
    if tied:
        print(f"{len(tied)} scores with tied cosines (s-t breaks those ties by float32 noise): "
              + ", ".join(f"{t}/{n} {d:.1e} ({ties[(t, n)]} ties)" for (t, n), d in tied.items()))
    ratio = capcse_wall / anchor_wall
    print(f"RESULT eval_speed ratio={ratio:.3f} target=0.5 capcse_s={capcse_wall:.1f} anchor_s={anchor_wall:.1f} "
          f"max_abs_diff={untied[worst]:.2e} scores_agree={str(agree).lower()} tied_scores={len(tied)} "
          f"max_abs_diff_tied={tied_max:.2e} cpu_ratio={capcse_cpu / anchor_cpu:.3f} pairs={n_pairs} "
          f"sts_avg={res.avg:.2f}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
