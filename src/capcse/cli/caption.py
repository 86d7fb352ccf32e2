"""`capcse caption`: synthetic caption corpora (generate, filter, stats, merge).

    capcse caption --images SOURCE --out DIR [--model M --decoding nucleus --top-p 0.9 ...]
    capcse caption filter CORPUS --out DIR [--min-chars 40 --dedup --near-dup 0.8 ...]
    capcse caption stats [LABEL=]CORPUS ... --out DIR
    capcse caption merge OUT SHARD_DIR ...
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "caption", help="caption images with an image-to-text model (nucleus sampling by default)",
        description="Caption images into a corpus (JSONL + one caption per line). Sub-commands: filter, stats, "
                    "merge. Run `capcse caption filter -h` etc. for theirs. See docs/captions.md.")
    p.add_argument("--images", help="folder (recursive), .txt/.lst/.csv/.tsv list of paths, webdataset .tar, "
                                    "folder of .tar shards, or a glob / {000..009} range of .tar shards")
    p.add_argument("--model", default="Salesforce/blip-image-captioning-large",
                   help="Hugging Face id or folder of an image-to-text model (default: %(default)s)")
    p.add_argument("--out", help="output folder (resumable: re-run the same command to continue)")
    p.add_argument("--decoding", choices=["nucleus", "beam", "greedy"], default="nucleus")
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--top-k", type=int, default=50, help="top-k cut before top-p (transformers' and hence "
                                                          "BLIP's default 50; 0 = pure nucleus)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--min-length", type=int, default=5,
                   help="min decoder tokens incl. start token and prompt, as in BLIP (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=20,
                   help="max decoder tokens incl. start token and prompt, as in BLIP (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="override: caption tokens after the prefix")
    p.add_argument("--min-new-tokens", type=int, default=None)
    p.add_argument("--num-captions", type=int, default=1, help="captions per image")
    p.add_argument("--num-beams", type=int, default=3, help="beam width for --decoding beam (BLIP: 3)")
    p.add_argument("--repetition-penalty", type=float, default=None,
                   help="default as BLIP: 1.1 for nucleus, 1.0 for beam/greedy")
    p.add_argument("--prompt", default=None, help='decoder prompt, e.g. "a picture of" (the seed\'s BLIP prompt); '
                                                  "removed from the output captions")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--chunk-size", type=int, default=None,
                   help="images per output chunk (resume unit; a multiple of --batch-size; default 64 batches)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="model weight dtype")
    p.add_argument("--autocast", choices=["none", "bf16", "fp16"], default="none",
                   help="mixed precision autocast around generation (bf16 is fast on AVX512-BF16 CPUs)")
    p.add_argument("--attention", choices=["sdpa", "eager"], default="sdpa",
                   help="BLIP vision attention: PyTorch's fused kernel (default) or transformers' own ops")
    p.add_argument("--shard", default=None, help="i/N: process only shard i of N (0-based)")
    p.add_argument("--num-workers", type=int, default=2, help="background image decoding processes (0: inline)")
    p.add_argument("--path-column", default=None, help="path column of a CSV/TSV source")
    p.add_argument("--adapter", choices=["auto", "blip", "encoder-decoder", "git", "generic"], default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_caption, caption_command=None)

    sub = p.add_subparsers(dest="caption_command", metavar="{filter,stats,merge}")
    f = sub.add_parser("filter", help="length and duplicate filters with a report")
    f.add_argument("corpus", help="captions .txt, .jsonl, or a caption run folder")
    f.add_argument("--out", required=True, help="output folder: filtered.txt/.jsonl, removed.jsonl, report.json")
    f.add_argument("--field", default="caption", help="JSONL field holding the caption")
    f.add_argument("--min-chars", type=int, default=None, help="keep captions with at least N characters "
                                                                "(the seed: 40)")
    f.add_argument("--max-chars", type=int, default=None, help="keep captions with at most N characters")
    f.add_argument("--min-tokens", type=int, default=None)
    f.add_argument("--max-tokens", type=int, default=None)
    f.add_argument("--tokenizer", default=None, help="count tokens with this HF tokenizer (default: words)")
    f.add_argument("--dedup", action="store_true", help="remove exact duplicates of normalised text")
    f.add_argument("--near-dup", type=float, default=None, metavar="JACCARD",
                   help="remove captions with word n-gram Jaccard >= this to an earlier kept one (e.g. 0.8)")
    f.add_argument("--ngram", type=int, default=2)
    f.add_argument("--num-perm", type=int, default=64)
    f.add_argument("--bands", type=int, default=16)
    f.set_defaults(func=_run_filter)

    s = sub.add_parser("stats", help="length histogram, distinct-1/2, vocabulary; corpora side by side")
    s.add_argument("corpora", nargs="+", help="[LABEL=]PATH of .txt/.jsonl/run folder")
    s.add_argument("--out", required=True)
    s.add_argument("--field", default="caption")
    s.set_defaults(func=_run_stats)

    m = sub.add_parser("merge", help="join shard runs made in separate folders into OUT")
    m.add_argument("out")
    m.add_argument("shards", nargs="+")
    m.set_defaults(func=_run_merge)


def _run_caption(args: argparse.Namespace) -> int:
    from capcse.caption.generate import DecodingConfig
    from capcse.caption.run import RunSettings, caption_images
    from capcse.data.images import parse_shard
    from capcse.errors import CapcseError

    if not args.images or not args.out:
        raise CapcseError("--images and --out are required (or use a sub-command: filter, stats, merge)")
    decoding = DecodingConfig(
        method=args.decoding, top_p=args.top_p, top_k=args.top_k, temperature=args.temperature,
        min_length=args.min_length, max_length=args.max_length, num_captions=args.num_captions,
        num_beams=args.num_beams, repetition_penalty=args.repetition_penalty, prompt=args.prompt or None,
        max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens)
    settings = RunSettings(images=args.images, model=args.model, decoding=decoding, seed=args.seed,
                           batch_size=args.batch_size, chunk_size=args.chunk_size or 64 * args.batch_size,
                           dtype=args.dtype, autocast=args.autocast, adapter=args.adapter,
                           path_column=args.path_column, attention=args.attention)
    stats = caption_images(settings, args.out, shard=parse_shard(args.shard), device=args.device,
                           num_workers=args.num_workers, progress=not args.quiet)
    rate = stats.images_now / stats.wall_seconds if stats.wall_seconds else 0.0
    print(f"captioned {stats.images_now} images ({stats.failed_now} skipped) in {stats.wall_seconds:.1f} s "
          f"({rate:.2f} images/s); {stats.chunks_done_now} chunks written, "
          f"{stats.chunks_skipped_existing} already done")
    if stats.assembled:
        print(f"corpus complete: {args.out}/captions.jsonl, captions.txt, skipped.jsonl, report.json")
    else:
        print(f"corpus incomplete: {len(stats.missing_chunks)} chunks still missing (other shards?)")
    return 0


def _run_filter(args: argparse.Namespace) -> int:
    from capcse.caption.filters import FilterConfig, filter_corpus

    cfg = FilterConfig(min_chars=args.min_chars, max_chars=args.max_chars, min_tokens=args.min_tokens,
                       max_tokens=args.max_tokens, tokenizer=args.tokenizer, dedup=args.dedup,
                       near_dup_threshold=args.near_dup, ngram=args.ngram, num_perm=args.num_perm, bands=args.bands)
    report = filter_corpus(args.corpus, args.out, cfg, field=args.field)
    print(f"{report['input']} captions -> {report['kept']} kept")
    for name, n in report["removed"].items():
        if n:
            print(f"  removed by {name}: {n}")
    return 0


def _run_stats(args: argparse.Namespace) -> int:
    from capcse.caption.stats import describe_corpora, markdown_table

    stats = describe_corpora(args.corpora, args.out, field=args.field)
    sys.stdout.write(markdown_table(stats))
    print(f"wrote {args.out}/stats.json, stats.md, lengths.png")
    return 0


def _run_merge(args: argparse.Namespace) -> int:
    from capcse.caption.run import merge_runs

    done, missing = merge_runs(args.out, args.shards)
    if done:
        print(f"merged into {args.out}: " + json.dumps(json.load(open(f"{args.out}/report.json"))["captions"])
              + " captions")
        return 0
    print(f"merged, but {len(missing)} chunks are still missing, e.g. {missing[:5]}")
    return 1
