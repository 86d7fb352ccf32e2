"""Training throughput of the multimodal recipes (MCSE, DALR) beside text-only SimCSE, same run.

Every recipe trains all-MiniLM-L6-v2 for the same number of optimiser steps through ``capcse train``'s
``run_training`` (the sentence-transformers Trainer), batch 64, max_len 32, on the wiki prefix;
MCSE and DALR add the 1,000-image Flickr8k sample's training captions with EfficientNet-Lite0
features (cached; computed before the timed part, its one-off cost is printed as ``setup_s``) and,
for DALR, the starting model as its frozen teacher (embeddings precomputed before the timed part).
The anchor is text-only SimCSE (``simcse-unsup-bert-base`` with the same model and data).

``steps/s`` counts every optimiser step; in the mixed recipes about one step in ``T // P`` is an
image-caption batch (MCSE's interleaving), the rest are text batches like SimCSE's.

Last line: ``RESULT multimodal_throughput ratio=<DALR steps/s / SimCSE steps/s> target=0.8``.

    .venv/bin/python benchmarks/multimodal_throughput.py [--quick] [--steps N] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def overrides(args, out: Path, extra: list[str]) -> list[str]:
    data = Path(args.data_dir)
    return [
        "model.name=all-MiniLM-L6-v2", "model.pooler=mean", "model.mlp_only_train=false", "model.max_length=32",
        f"data.train={data / 'wiki1m_prefix' / 'wiki1m_for_simcse.first11914.txt'}",
        f"train.output_dir={out}", f"train.batch_size={args.batch_size}", f"train.max_steps={args.steps}",
        "train.report_to=[none]", f"train.logging_steps={max(1, args.steps)}", "train.device=cpu",
        f"train.torch_threads={args.threads}", "train.save_steps=100000", "eval.during=none", "eval.final=[none]",
        *extra,
    ]


def multimodal(args, cache: Path) -> list[str]:
    data = Path(args.data_dir)
    return [f"multimodal.pairs={data / 'flickr8k_mini1000'}", "multimodal.split=train",
            "multimodal.captions_per_image=null", "multimodal.vision=efficientnet-lite0",
            "multimodal.grounding_input=sentence", f"multimodal.feature_cache={cache}"]


def run(name: str, recipe_name: str, sets: list[str]) -> dict:
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import run_training

    recipe = load_recipe(recipe_name, sets)
    t0 = time.perf_counter()
    res = run_training(recipe, log=lambda *a: None)
    total = time.perf_counter() - t0
    sps = res.steps / res.train_seconds
    row = {"recipe": name, "steps": res.steps, "train_s": round(res.train_seconds, 2),
           "setup_s": round(total - res.train_seconds, 2), "steps_per_s": round(sps, 4),
           "sentences_per_s": round(sps * recipe.train.batch_size, 2)}
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="6 steps, batch 32 (a smoke run, < 3 min on an idle machine)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=os.environ.get("CAPCSE_DATA", str(REPO.parent / "shared" / "data")))
    p.add_argument("--work", default=None, help="folder for outputs and the feature cache (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.batch_size = 6, 32
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="mm-throughput-"))
    cache = work / "cache"
    teacher = ["multimodal.teachers=[all-MiniLM-L6-v2]"]
    rows = {}
    # cold caches first: the one-off vision / teacher encoding shows up as setup_s of the first runs
    rows["mcse"] = run("mcse", "mcse-flickr-bert-base", overrides(args, work / "mcse", multimodal(args, cache)))
    rows["simcse"] = run("simcse (text only)", "simcse-unsup-bert-base", overrides(args, work / "simcse", []))
    rows["dalr"] = run("dalr", "dalr-flickr-bert-base",
                       overrides(args, work / "dalr", multimodal(args, cache) + teacher))
    base = rows["simcse"]["steps_per_s"]
    print(f"| recipe | steps | steps/s | sentences/s | vs SimCSE | setup s |")
    print(f"|---|---:|---:|---:|---:|---:|")
    for key, r in rows.items():
        print(f"| {r['recipe']} | {r['steps']} | {r['steps_per_s']:.3f} | {r['sentences_per_s']:.1f} | "
              f"{r['steps_per_s'] / base:.2f} | {r['setup_s']:.0f} |")
    ratio = rows["dalr"]["steps_per_s"] / base
    print(f"RESULT multimodal_throughput ratio={ratio:.3f} target=0.8 simcse_steps_per_s={base:.3f} "
          f"mcse_steps_per_s={rows['mcse']['steps_per_s']:.3f} dalr_steps_per_s={rows['dalr']['steps_per_s']:.3f} "
          f"steps={args.steps} batch={args.batch_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
