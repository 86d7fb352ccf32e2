"""`capcse link ...`: CLIPPINGS multimodal record linkage (build, embed, cluster, eval)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "multimodal record linkage (CLIPPINGS): build a benchmark, embed records, cluster, evaluate"

EPILOG = """\
steps:
  build    turn an image-caption set into a linkage benchmark (records.csv + images/ + build.json)
  embed    embed every record's image and caption with a bi-encoder (embeddings.npz)
  train    train projection heads on frozen-tower features: CLIP pre-training, then SupCon
  cluster  exact single linkage of one split at a cosine-distance threshold (clusters.csv)
  eval     tune the threshold (and im_wt) on validation, score test: ARI, pairwise P/R/F1, purity,
           and the Jaccard baseline (results.json)
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("link", help=HELP, description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = p.add_subparsers(dest="step", metavar="STEP")
    steps.required = True

    b = steps.add_parser("build", help="build a linkage benchmark from an image-caption set")
    b.add_argument("--data-dir", default=None, help="data folder holding flickr8k_mini1000/ (default: $CAPCSE_DATA)")
    b.add_argument("--captions", default=None, help="captions.tsv (image, caption_id, split, caption); default: DATA/flickr8k_mini1000/captions.tsv")
    b.add_argument("--images", default=None, help="image folder; default: beside --captions, images/")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--min-copies", type=int, default=1)
    b.add_argument("--max-copies", type=int, default=5)
    b.add_argument("--splits", type=float, nargs=3, default=(0.5, 0.25, 0.25), metavar=("TRAIN", "VAL", "TEST"))
    b.add_argument("--limit", type=int, default=None, help="use only the first N source images")
    b.set_defaults(func=run_build)

    e = steps.add_parser("embed", help="embed records (image and text) with a bi-encoder")
    e.add_argument("records", help="records file (CSV or JSONL)")
    e.add_argument("--model", default="assembled", help="'assembled' (text + image towers) or a CLIPModel id/path")
    e.add_argument("--text-model", default="all-MiniLM-L6-v2", help="text tower of --model assembled")
    e.add_argument("--image-model", default="efficientnet-lite0", help="image tower of --model assembled")
    e.add_argument("--projection-dim", type=int, default=None, help="assembled: project both towers to this size "
                   "with seeded random heads (default: no heads; towers are used as they are)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--device", default=None)
    e.add_argument("--out", required=True, help="embeddings .npz")
    e.set_defaults(func=run_embed)

    t = steps.add_parser("train", help="train projection heads on frozen-tower features (CLIP, then SupCon)")
    t.add_argument("embeddings", help="features .npz from `capcse link embed` (towers without heads)")
    t.add_argument("--out", required=True, help="output folder: heads.safetensors, heads.json, embeddings.npz (projected)")
    t.add_argument("--config", default=None, help="YAML recipe (e.g. configs/clippings-supervised.yaml); its keys "
                   "(stages, seed, dim, im_wt, clip_epochs, supcon_epochs, m, k, supcon_batch, select_best, clip_select) replace the defaults "
                   "of the options below, and options given on the command line replace the recipe")
    t.add_argument("--stages", nargs="+", choices=("clip", "supcon"), default=None,
                   help="clip = self-supervised image-caption pre-training; supcon = supervised metric learning (default: both)")
    t.add_argument("--seed", type=int, default=None, help="default 0")
    t.add_argument("--dim", type=int, default=None, help="projection width (default 256)")
    t.add_argument("--im-wt", type=float, default=None, help="image weight of the pooled embedding trained by SupCon (default 0.5)")
    t.add_argument("--clip-epochs", type=int, default=None, help="default 20")
    t.add_argument("--supcon-epochs", type=int, default=None, help="default 20")
    t.add_argument("--m", type=int, default=None, help="records per cluster in a SupCon batch (default 3)")
    t.add_argument("--k", type=int, default=None, help="clusters per hard-negative neighbourhood (default 3)")
    t.add_argument("--supcon-batch", type=int, default=None, help="default 54")
    t.add_argument("--select-best", dest="select_best", action="store_true", default=None,
                   help="keep each stage's best state on validation (SupCon: validation ARI; CLIP: validation CLIP loss), "
                        "as the original; the CLIPPINGS recipes set it")
    t.add_argument("--no-select-best", dest="select_best", action="store_false", help="keep the last state")
    t.add_argument("--clip-select", choices=("val_loss", "val_ari"), default=None,
                   help="CLIP stage's criterion with --select-best: validation CLIP loss (the original's; default) or validation ARI")
    t.set_defaults(func=run_train)

    c = steps.add_parser("cluster", help="single-linkage clusters of one split")
    c.add_argument("embeddings", help="embeddings .npz from `capcse link embed`")
    c.add_argument("--threshold", type=float, required=True, help="cosine distance; pairs <= it are linked")
    c.add_argument("--im-wt", type=float, default=0.5, help="image weight of the record embedding (1 image only, 0 text only)")
    c.add_argument("--split", default="test", choices=("train", "validation", "test", "all"))
    c.add_argument("--out", required=True, help="clusters CSV (record_id, cluster)")
    c.set_defaults(func=run_cluster)

    v = steps.add_parser("eval", help="tune on validation, score test (ARI, P/R/F1, purity) + Jaccard baseline")
    v.add_argument("embeddings", nargs="?", help="embeddings .npz (omit for --jaccard-only)")
    v.add_argument("--records", required=True, help="records file (for the Jaccard baseline's captions)")
    v.add_argument("--mode", choices=("multimodal", "image", "text", "all"), default="all",
                   help="record embedding: mean of both (im_wt), image only, text only, or all three")
    v.add_argument("--im-wt", type=float, default=0.5)
    v.add_argument("--tune-im-wt", action="store_true", help="multimodal: also choose im_wt on validation")
    v.add_argument("--no-jaccard", action="store_true")
    v.add_argument("--jaccard-only", action="store_true")
    v.add_argument("--jaccard-variant", choices=("original", "capcse"), default="original",
                   help="Jaccard baseline: 'original' = CLIPPINGS' jaccard_sim.py (punctuation deleted, hyphens kept; "
                        "n 1-5, threshold 0.05-0.20 by 0.01), 'capcse' = punctuation to spaces, n 1-3, threshold 0.05-0.95 by 0.025")
    v.add_argument("--jaccard-same-scan", action="store_true",
                   help="as the original script, never link two records whose ids agree after their first '_' (same scan)")
    v.add_argument("--out", default=None, help="results JSON")
    v.set_defaults(func=run_eval)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_build(args) -> int:
    from capcse.data.linkage import build_benchmark
    from capcse.errors import DataNotFoundError

    captions = args.captions
    if captions is None:
        root = args.data_dir or os.environ.get("CAPCSE_DATA")
        if not root:
            raise DataNotFoundError("give --captions, or --data-dir / $CAPCSE_DATA holding flickr8k_mini1000/")
        captions = Path(root) / "flickr8k_mini1000" / "captions.tsv"
    captions = Path(captions)
    if not captions.is_file():
        raise DataNotFoundError(f"caption table not found: {captions}")
    images = Path(args.images) if args.images else captions.parent / "images"
    summary = build_benchmark(captions, images, args.out, seed=args.seed, min_copies=args.min_copies,
                              max_copies=args.max_copies, split_fractions=args.splits, limit=args.limit)
    print(f"built {summary['n_records']} records from {summary['n_sources']} images in {args.out}: "
          f"{summary['records_per_split']} (clusters {summary['clusters_per_split']}), records sha256 {summary['records_sha256'][:12]}")
    return 0


def _load_dual(args):
    from capcse.models.dual import DualEncoder

    if args.model == "assembled":
        from capcse.models.encoder import load_encoder
        from capcse.models.image import load_image_encoder

        text = load_encoder(args.text_model, device=args.device).model
        image = load_image_encoder(args.image_model)
        if args.projection_dim is None:
            from torch import nn

            dual = DualEncoder("assembled", text_model=text, image_model=image, text_proj=nn.Identity(), image_proj=nn.Identity())
        else:
            dual = DualEncoder.assemble(text, image, projection_dim=args.projection_dim, seed=args.seed)
    else:
        dual = DualEncoder.from_clip(args.model)
    if args.device:
        dual.to(args.device)
    return dual


def run_embed(args) -> int:
    import numpy as np
    from PIL import Image

    from capcse.data.linkage import read_records
    from capcse.io import atomic_open

    records, report = read_records(args.records, require_cluster=False)
    _log(report.summary())
    dual = _load_dual(args)
    images, texts = [], []
    out = {"image": [], "text": []}
    for k, r in enumerate(records):
        with Image.open(r.image) as im:
            images.append(im.convert("RGB"))
        texts.append(r.text)
        if len(images) == 256 or k == len(records) - 1:
            emb = dual.encode_records(images, texts, batch_size=args.batch_size)
            out["image"].append(emb["image"].numpy())
            out["text"].append(emb["text"].numpy())
            images, texts = [], []
            _log(f"embedded {k + 1}/{len(records)} records")
    with atomic_open(args.out, "wb") as fh:
        np.savez(fh, record_id=np.array([r.record_id for r in records]), cluster_id=np.array([r.cluster_id or "" for r in records]),
                 split=np.array([r.split for r in records]), image=np.concatenate(out["image"]), text=np.concatenate(out["text"]))
    print(f"wrote {args.out}: {len(records)} records, image dim {out['image'][0].shape[1]}, text dim {out['text'][0].shape[1]}")
    return 0


def _load_npz(path):
    from capcse.evaluation.linkage_report import load_embeddings

    return load_embeddings(path)


def _find_link_recipe(name_or_path) -> Path:
    """A recipe path, a name in the configs folder (``clippings-supervised``), or ``configs/<file>``
    given from outside the repository (the file name is then looked up in the configs folder)."""
    from capcse.errors import ConfigError
    from capcse.train.recipe import configs_dir, find_recipe

    try:
        return find_recipe(name_or_path)
    except ConfigError:
        cand = configs_dir() / Path(name_or_path).name
        if cand.is_file():
            return cand
        raise


def _apply_config(args) -> None:
    """Options given on the command line win, then the recipe's values, then the defaults
    (:class:`capcse.train.linkage.LinkTrainRecipe`)."""
    from dataclasses import asdict

    from capcse.train.linkage import LinkTrainRecipe
    from capcse.train.recipe import load_recipe

    recipe = load_recipe(_find_link_recipe(args.config), kind=LinkTrainRecipe) if args.config else LinkTrainRecipe()
    for key, value in asdict(recipe).items():
        if key not in ("name", "description") and getattr(args, key) is None:
            setattr(args, key, value)


def run_train(args) -> int:
    import numpy as np

    _apply_config(args)

    from capcse.io import atomic_open
    from capcse.train.linkage import project_embeddings, train_heads

    z = _load_npz(args.embeddings)
    heads = train_heads(z, args.out, stages=tuple(args.stages), seed=args.seed, dim=args.dim, im_wt=args.im_wt,
                        clip_epochs=args.clip_epochs, supcon_epochs=args.supcon_epochs, m=args.m, k=args.k,
                        supcon_batch=args.supcon_batch, select_best=bool(args.select_best), clip_select=args.clip_select, log=_log)
    projected = project_embeddings(heads, z)
    with atomic_open(Path(args.out) / "embeddings.npz", "wb") as fh:
        np.savez(fh, **projected)
    print(f"trained {'+'.join(args.stages)} heads; wrote {Path(args.out) / 'embeddings.npz'}")
    return 0


def run_cluster(args) -> int:
    import numpy as np

    from capcse.evaluation.linkage import single_linkage
    from capcse.evaluation.linkage_metrics import combine_embeddings
    from capcse.io import atomic_open

    z = _load_npz(args.embeddings)
    sel = np.ones(len(z["split"]), bool) if args.split == "all" else z["split"] == args.split
    X = combine_embeddings(z["image"][sel], z["text"][sel], args.im_wt)
    labels, info = single_linkage(X, args.threshold, return_info=True)
    with atomic_open(args.out, "w") as fh:
        fh.write("record_id,cluster\n")
        for rid, lab in zip(z["record_id"][sel], labels):
            fh.write(f"{rid},{lab}\n")
    print(f"{sel.sum()} records -> {info.n_clusters} clusters at threshold {args.threshold} ({info.method}, {info.seconds['total']:.2f}s); wrote {args.out}")
    return 0


def run_eval(args) -> int:
    from capcse.evaluation.linkage_report import evaluate_records

    results = evaluate_records(args.embeddings, args.records, mode=args.mode, im_wt=args.im_wt, tune_im_wt=args.tune_im_wt,
                               jaccard=not args.no_jaccard, jaccard_only=args.jaccard_only, jaccard_variant=args.jaccard_variant,
                               jaccard_same_scan=args.jaccard_same_scan, log=_log)
    for row in results["rows"]:
        print(f"{row['name']:<28} ARI {100 * row['test']['ari']:6.1f}  F1 {100 * row['test']['f1']:6.1f}  "
              f"purity {100 * row['test']['purity']:6.1f}  threshold {row['threshold']:.4f}" + (f"  im_wt {row['im_wt']}" if row.get("im_wt") is not None else ""))
    if args.out:
        from capcse.io import atomic_write_json

        atomic_write_json(args.out, results)
        print(f"wrote {args.out}")
    return 0
