"""Raw STS releases vs SentEval's tokenised, lower-cased copies: what differs, and what it does to scores.

For every STS test set (STS12-16, STS-B; SICK-R has one variant) this compares the two text variants
pair by pair: pair counts, gold scores, how many sentences differ as strings, and how many differ
*after the model's own tokenizer* (all-MiniLM-L6-v2's uncased WordPiece lower-cases and splits
punctuation itself, so most of SentEval's Moses tokenisation is invisible to it). With ``--encode``
it also evaluates the model on both variants (cosine Spearman x100, SentEval's 'all' aggregation).

    python benchmarks/sts_text_variants.py [--encode] [--model all-MiniLM-L6-v2]

Last line: ``RESULT sts_text_variants ratio=<raw Avg. / senteval Avg.> target=1`` with ``--encode``,
else ``ratio`` = the fraction of sentences whose token ids differ.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb")


def main() -> None:
    import numpy as np

    from capcse.data.loaders import load_sts
    from capcse.models.encoder import load_encoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--data-dir", default=os.environ.get("CAPCSE_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--encode", action="store_true", help="also evaluate on both variants (~3 min on 2 cores)")
    ap.add_argument("--quick", action="store_true", help="STS-B and STS12 only")
    args = ap.parse_args()
    sets = ("sts12", "stsb") if args.quick else SETS
    enc = load_encoder(args.model, device="cpu")
    tok = enc.model.tokenizer
    print(f"model {args.model}; tokenizer {type(tok).__name__} (do_lower_case="
          f"{getattr(tok, 'do_lower_case', None)})")
    print(f"{'set':8} {'subset':18} {'pairs':>6} {'gold=':>6} {'str diff':>9} {'tok diff':>9}  example (raw | senteval)")
    total = str_diff = tok_diff = 0
    examples = []
    for name in sets:
        raw, sev = load_sts(name, "test", data_dir=args.data_dir, variant="raw"), \
            load_sts(name, "test", data_dir=args.data_dir, variant="senteval")
        if list(raw) != list(sev):
            raise SystemExit(f"{name}: subsets differ: {list(raw)} vs {list(sev)}")
        for sub in raw:
            r, s = raw[sub], sev[sub]
            if len(r) != len(s):
                raise SystemExit(f"{name}/{sub}: {len(r)} raw pairs vs {len(s)} senteval pairs")
            gold_equal = bool(np.allclose(r.scores, s.scores))
            rs, ss = r.sentences1 + r.sentences2, s.sentences1 + s.sentences2
            ids_r = tok(rs, add_special_tokens=False)["input_ids"]
            ids_s = tok(ss, add_special_tokens=False)["input_ids"]
            nd = sum(a != b for a, b in zip(rs, ss))
            nt = [i for i, (a, b) in enumerate(zip(ids_r, ids_s)) if a != b]
            total, str_diff, tok_diff = total + len(rs), str_diff + nd, tok_diff + len(nt)
            ex = ""
            if nt:
                i = nt[0]
                ex = f"{rs[i][:60]!r} | {ss[i][:60]!r}"
                examples.append((name, sub, tok.convert_ids_to_tokens(ids_r[i])[:20],
                                 tok.convert_ids_to_tokens(ids_s[i])[:20]))
            print(f"{name:8} {sub:18} {len(r):6d} {str(gold_equal):>6} {nd / len(rs):9.1%} {len(nt) / len(rs):9.1%}  {ex}")
    print(f"\nall sentences: {total}; differ as strings {str_diff / total:.1%}; differ after the tokenizer "
          f"{tok_diff / total:.1%}")
    for name, sub, a, b in examples[:4]:
        print(f"  {name}/{sub}: raw tokens {a}\n  {'':{len(name) + len(sub) + 1}}  senteval   {b}")
    if not args.encode:
        print(f"RESULT sts_text_variants ratio={tok_diff / total:.4f} target=0 sentences={total} "
              f"string_diff={str_diff / total:.4f}")
        return
    from capcse.evaluation import run_evaluation

    avgs = {}
    for variant in ("raw", "senteval"):
        t0 = time.perf_counter()
        res = run_evaluation(enc, list(sets), "test", data_dir=args.data_dir, variant=variant)
        avgs[variant] = res.sts.table()
        print(f"{variant:9}: " + " | ".join(f"{k} {v:.2f}" for k, v in avgs[variant].items())
              + f"  ({time.perf_counter() - t0:.0f} s)")
    raw_avg = sum(avgs["raw"].values()) / len(avgs["raw"])
    sev_avg = sum(avgs["senteval"].values()) / len(avgs["senteval"])
    print(f"RESULT sts_text_variants ratio={raw_avg / sev_avg:.5f} target=1 raw_avg={raw_avg:.2f} "
          f"senteval_avg={sev_avg:.2f} token_diff={tok_diff / total:.4f}")


if __name__ == "__main__":
    main()
