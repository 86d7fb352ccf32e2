"""capcse corpus build|check: leakage-checked pretraining corpora (every local sentence no evaluation uses)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="build / check a pretraining corpus against every evaluation set",
                       description="Gather the training-only text of the local data sets, drop every sentence "
                                   "that an evaluation reads (exact and tokenisation-blind match), report.")
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    b = s.add_parser("build", help="write the corpus (one sentence per line) and its report (.json, .md)")
    b.add_argument("--lang", default="en", help="en | ko (default en)")
    b.add_argument("--out", required=True, help="the corpus file to write (the report goes beside it)")
    b.add_argument("--data-dir", help="data folder (else $CAPCSE_DATA / the cache)")
    b.add_argument("--tokenizer", default=None,
                   help="tokenizer to count tokens with (default: all-MiniLM-L6-v2's for en, none for ko)")
    b.add_argument("--limit", type=int, default=None, help="at most N sentences per source")
    b.set_defaults(func=build)
    c = s.add_parser("check", help="count the sentences of a file that an evaluation set contains")
    c.add_argument("file", help="one sentence per line")
    c.add_argument("--lang", default="en")
    c.add_argument("--data-dir")
    c.set_defaults(func=check)


def build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from capcse.data.pretrain_corpus import build_corpus, write_report

    tok = None
    name = args.tokenizer or ("all-MiniLM-L6-v2" if args.lang == "en" else None)
    if name:
        from capcse.train.pretrain import load_tokenizer

        tok = load_tokenizer(name)
    out = Path(args.out)
    report = build_corpus(args.lang, out, data_dir=args.data_dir, tokenizer=tok, sentence_limit=args.limit)
    write_report(report, out)
    print(report.markdown(), end="")
    return 0 if not any(report.matches_after.values()) else 1


def check(args: argparse.Namespace) -> int:
    from capcse.data._text import read_lines
    from capcse.data.pretrain_corpus import check_leakage, eval_index

    index = eval_index(args.lang, args.data_dir)
    lines = [s for s in read_lines(args.file) if s.strip()]
    found = check_leakage(lines, index)
    print(f"{args.file}: {len(lines):,} sentences; in an evaluation set: exact {found['exact']:,}, "
          f"strict {found['strict']:,}")
    return 1 if any(found.values()) else 0
