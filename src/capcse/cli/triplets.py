"""capcse triplets --nli FILE [--nli FILE ...] [--format ...] [--split S] --out triplets.csv"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("triplets", help="NLI pairs with labels -> SimCSE triplets (premise, entailment, contradiction)",
                       description="Convert labelled NLI pairs (SNLI / MNLI / KorNLI / XNLI-ko / SentEval SNLI) into "
                                   "SimCSE's supervised training file: a CSV with columns sent0 (premise), "
                                   "sent1 (entailment hypothesis), hard_neg (contradiction hypothesis). Neutral "
                                   "pairs are ignored; premises without both an entailment and a contradiction "
                                   "are dropped. Written atomically.")
    p.add_argument("--nli", action="append", required=True, metavar="FILE",
                   help="NLI pairs: a TSV with a header naming sentence1, sentence2, gold_label (SNLI/MNLI .txt, "
                        "KorNLI, XNLI-ko), a .jsonl file, SentEval's SNLI folder (with --split), or a data set name "
                        "such as kornli-xnli (with --split dev|test). Repeatable: the files are pooled.")
    p.add_argument("--format", default="auto", choices=("auto", "kornli", "tsv", "jsonl", "snli-senteval"),
                   help="input layout (default: from the path); kornli = tsv")
    p.add_argument("--split", help="split of a folder input (SentEval SNLI: train/dev/test; kornli-xnli: dev/test)")
    p.add_argument("--data-dir", help="data folder for data set names (else CAPCSE_DATA, then the cache)")
    p.add_argument("--skip-malformed", action="store_true",
                   help="skip and count malformed rows instead of stopping at the first (file and line named)")
    p.add_argument("--out", required=True, help="output CSV (sent0,sent1,hard_neg)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from capcse.train.data import triplets_from_nli, write_triplets

    triplets, stats = triplets_from_nli(args.nli, fmt=args.format, split=args.split, data_dir=args.data_dir,
                                        skip_malformed=args.skip_malformed)
    if not triplets:
        from capcse.errors import CapcseError

        raise CapcseError(f"no triplet: none of the {stats['premises']} premises has both an entailment and a "
                          "contradiction hypothesis")
    out = write_triplets(args.out, triplets)
    print(f"{stats['files']} file(s), {stats['pairs']} labelled pairs "
          f"(skipped: {stats['skipped_no_gold_label']} without gold label, {stats['skipped_malformed']} malformed); "
          f"{stats['premises_used']} of {stats['premises']} premises have an entailment and a contradiction")
    print(f"{stats['triplets']} triplets -> {out}")
    return 0
