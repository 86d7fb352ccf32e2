"""`capcse eval MODEL`: SentEval-exact STS / transfer / KorSTS evaluation and its report."""

from __future__ import annotations

import argparse
import sys

HELP = "evaluate a sentence encoder (STS, transfer, KorSTS) and write a report"

EPILOG = """\
tasks: sts (STS12-16, STS-B, SICK-R; dev mode: STS-B dev, SICK-R dev), transfer (MR CR SUBJ MPQA SST2
TREC MRPC), korsts, all; or task ids, comma-separated (e.g. stsb,sickr,mr).
output: results.json, results.md, plots/*.png, report.html in --output.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help=HELP, description=HELP, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model alias (e.g. all-MiniLM-L6-v2), local folder or Hugging Face id")
    p.add_argument("--tasks", default="sts", help="sts | transfer | korsts | all, or comma-separated task ids "
                   "(default: sts)")
    p.add_argument("--mode", choices=("test", "dev"), default="test",
                   help="test: SimCSE's test table; dev: STS-B/SICK-R dev sets and transfer dev accuracy")
    p.add_argument("--data-dir", default=None, help="data folder (default: $CAPCSE_DATA, then the user cache)")
    p.add_argument("--output", default="outputs/eval", help="report folder (default: outputs/eval)")
    p.add_argument("--variant", choices=("senteval", "raw"), default="senteval",
                   help="STS text: SentEval's tokenised lower-cased copies (SimCSE's numbers) or the raw releases")
    p.add_argument("--max-length", type=int, default=None, metavar="N",
                   help="inference length: cut every sentence at N tokens (default: the model's own max_seq_length; "
                        "the report states the length used)")
    p.add_argument("--pooler", default=None, help="pooler (cls, cls_before_pooler, avg, avg_top2, "
                   "avg_first_last, avg_first_last_paper, mean); default: the model's own")
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: automatic)")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="autocast dtype")
    p.add_argument("--fast", action="store_true", help="transfer probes like SimCSE's fast mode: 5 folds, "
                   "sparser C grid")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel probe fits (default: min(2, CPUs))")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--detail", action="store_true", help="also print the per-aggregation, 8-correlation "
                   "and per-subset tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from capcse.data.sts import IncompleteDataWarning
    from capcse.evaluation import resolve_tasks, run_evaluation
    from capcse.report import console_report, write_report

    resolve_tasks(args.tasks, args.mode)  # fail on a bad task name before loading a model
    from capcse.models import load_encoder

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    encoder = load_encoder(args.model, pooler=args.pooler, device=args.device, dtype=args.dtype,
                           max_length=args.max_length)
    log(f"model: {encoder!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IncompleteDataWarning)
        result = run_evaluation(encoder, args.tasks, args.mode, data_dir=args.data_dir, variant=args.variant,
                                fast=args.fast, batch_size=args.batch_size, n_jobs=args.n_jobs, name=args.model,
                                log=log)
    incomplete = [str(w.message) for w in caught if issubclass(w.category, IncompleteDataWarning)]
    for w in caught:
        if not issubclass(w.category, IncompleteDataWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    result.settings.update({"pooler": args.pooler, "device": str(encoder.device), "dtype": args.dtype})
    if incomplete:
        result.settings["incomplete_data"] = incomplete
    written = write_report(result, args.output, plots=not args.no_plots)
    print(console_report(result.to_dict(), detail=args.detail))
    for msg in incomplete:  # under the table, where the score is read
        log(f"WARNING: incomplete data: {msg}")
    print(f"\nwall time {result.timing['total_seconds']:.1f} s; report: {written['html']}")
    return 0
