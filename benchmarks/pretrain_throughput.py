"""Pretraining throughput: ``capcse pretrain`` (recipe mlm-bert-mini) vs the stock masked-LM recipe.

Both sides train the same BERT (4 layers x 256, 4 heads, FFN 1024, the bert-base-uncased WordPiece
vocabulary of the packaged all-MiniLM-L6-v2 tokenizer, random init with the same seed) on the same
blocks: the leakage-checked English corpus (``capcse corpus build --lang en``; ``--corpus FILE`` to give
one) tokenised and packed into 128-token blocks as transformers' ``run_mlm`` does, batch 64, lr 1e-3,
the same number of optimizer steps, ``torch.set_num_threads(--threads)``, each side in its own subprocess.

* anchor -- the stock recipe: ``BertForMaskedLM`` + transformers ``Trainer`` with its defaults (fp32),
  ``DataCollatorForLanguageModeling`` (15 %, 80/10/10), the prediction head over every position, as
  ``run_mlm`` trains.
* capcse -- the real path of ``capcse pretrain`` (:func:`capcse.train.pretrain.run_pretraining` with the
  mlm-bert-mini recipe): bf16 autocast, the head at masked positions only
  (``mlm.prediction: masked``), capcse's fast dropout (``train.fast_dropout: auto``), fused AdamW.
  Evaluation, checkpoints and snapshots are pushed past the timed steps.

Timed: ``--steps`` optimizer steps after ``--warmup`` untimed ones (end of the last warm-up step to the
end of the last step: collation + forward + backward + optimizer). tokens/s = steps x 64 x 128 / seconds.
Model FLOPs per step = 3 x forward: the encoder (``L * (2*s*(4*d*d + 2*d*f) + 4*s*s*d)`` per block) plus
the prediction head (``2*(d*d + d*V)`` per position it runs at: every position on the anchor side, the
masked ones on capcse's). Their rate is given beside ``torch.matmul`` (2048 x 2048, fp32 and bf16)
timed in the same run (before and after the workers; the higher is the reference).

Last line: ``RESULT pretrain_throughput ratio=<capcse / anchor tokens per second> target=4 ...``.

    .venv/bin/python benchmarks/pretrain_throughput.py            # 3 + 30 steps each side
    .venv/bin/python benchmarks/pretrain_throughput.py --quick    # 2 + 8 steps, 20,000 corpus sentences

The quick mode reads low: its 8 steps fall in the first ~10-25 steps from random initialisation, whose
denormal arithmetic makes capcse's step ~20 % slower than later on (docs/results.md); cite the full mode.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from capcse.experiment.spec import default_data_dir  # noqa: E402
from train_throughput import forward_flops, matmul_gflops  # noqa: E402

RECIPE = "mlm-bert-mini"


def step_clock(warmup: int, steps: int):
    from transformers import TrainerCallback

    marks: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            marks[0] = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            marks[state.global_step] = time.perf_counter()

    return Clock(), lambda: marks[warmup + steps] - marks[warmup]


def masked_counter(model):
    """Counts the positions with a label in every training batch (what the capcse head runs at)."""
    counts: list[int] = []

    def hook(module, args, kwargs):
        labels = kwargs.get("labels")
        if labels is not None and module.training:
            counts.append(int((labels != -100).sum()))

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return counts


def worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from capcse.train.pretrain import load_pretrain_recipe

    total = args.warmup + args.steps
    recipe = load_pretrain_recipe(RECIPE, [f"data.train={args.corpus}", f"train.max_steps={total}",
                                           f"train.output_dir={args.out}", "train.report_to=[none]",
                                           f"eval.steps={10 * total}", f"train.save_steps={10 * total}",
                                           "train.snapshot_steps=null", "train.progress=off",
                                           f"data.limit={args.limit}" if args.limit else "data.limit=null"])
    clock, seconds = step_clock(args.warmup, args.steps)
    cfg, block, batch = recipe.model.config, recipe.model.block_size, recipe.train.batch_size
    if args.worker == "capcse":
        from capcse.train import pretrain

        counted: list[list[int]] = []
        original = pretrain.use_masked_prediction

        def use_and_count(model):  # the hook sees the labels the masked-only forward receives
            original(model)
            counted.append(masked_counter(model))

        pretrain.use_masked_prediction = use_and_count
        res = pretrain.run_pretraining(recipe, log=lambda *a: None, callbacks=[clock])
        head_positions = sum(counted[0][args.warmup: total]) / args.steps
        blocks = res.train_blocks
    else:
        from transformers import Trainer, TrainingArguments

        from capcse.train.pretrain import (BlockDataset, build_mlm_model, collator, load_tokenizer, pack_blocks,
                                           read_corpus)

        tok = load_tokenizer(recipe.model.tokenizer)
        train, _ = read_corpus(Path(args.corpus), recipe.data.heldout_per_mille, args.limit)
        data = pack_blocks(tok, train, block)
        blocks = len(data["input_ids"])
        model = build_mlm_model(recipe, tok)  # the same BertForMaskedLM, the same seed; stock forward
        t = recipe.train
        targs = TrainingArguments(output_dir=args.out, per_device_train_batch_size=batch, learning_rate=t.learning_rate,
                                  max_steps=total, warmup_steps=float(t.warmup_ratio), weight_decay=t.weight_decay,
                                  adam_beta2=t.adam_beta2, adam_epsilon=t.adam_epsilon, seed=t.seed,
                                  save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
                                  logging_steps=10 * total, remove_unused_columns=False)
        trainer = Trainer(model=model, args=targs, train_dataset=BlockDataset(data),
                          data_collator=collator(tok, recipe.mlm), callbacks=[clock])
        trainer.train()
        head_positions = batch * block
    sec = seconds()
    d, f, layers, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], 30522
    flops = 3.0 * (batch * forward_flops(block, layers, d, f) + head_positions * 2 * (d * d + d * vocab))
    return {"variant": args.worker, "seconds": sec, "steps": args.steps, "blocks": blocks,
            "tokens_per_s": args.steps * batch * block / sec, "gflops_per_s": flops * args.steps / sec / 1e9,
            "head_positions_per_step": head_positions}


def run_worker(name: str, args, corpus: Path, out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--corpus", str(corpus), "--out",
           str(out / name), "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"worker {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 + 8 steps, the first 20,000 corpus sentences")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", help="one sentence per line (default: capcse corpus build --lang en, cached)")
    ap.add_argument("--limit", type=int, default=None, help="first N corpus sentences")
    ap.add_argument("--data-dir", default=default_data_dir())
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.steps = args.steps or (8 if args.quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    args.limit = args.limit or (20000 if args.quick else None)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    corpus = Path(args.corpus) if args.corpus else ROOT / "outputs" / "bench" / "corpus-en.txt"
    if not corpus.is_file():
        cmd = [sys.executable, "-m", "capcse", "corpus", "build", "--lang", "en", "--out", str(corpus)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        print("building the corpus:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    load = os.getloadavg()[0]
    peaks = {d: [matmul_gflops(d)] for d in ("fp32", "bf16")}
    print(f"torch.matmul 2048^2: fp32 {peaks['fp32'][0]:.0f} GFLOP/s, bf16 {peaks['bf16'][0]:.0f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: run_worker(name, args, corpus, Path(tmp)) for name in ("anchor", "capcse")}
    for d in peaks:
        peaks[d].append(matmul_gflops(d))
    peak = {d: max(v) for d, v in peaks.items()}
    a, c = results["anchor"], results["capcse"]
    print(f"\n{'side':8} {'tokens/s':>10} {'GFLOP/s':>9} {'% fp32 mm':>9} {'% bf16 mm':>9} {'head pos/step':>13}")
    for r in (a, c):
        print(f"{r['variant']:8} {r['tokens_per_s']:10.0f} {r['gflops_per_s']:9.1f} "
              f"{100 * r['gflops_per_s'] / peak['fp32']:9.1f} {100 * r['gflops_per_s'] / peak['bf16']:9.1f} "
              f"{r['head_positions_per_step']:13.0f}")
    ratio = c["tokens_per_s"] / a["tokens_per_s"]
    figures = {"ratio": ratio, "target": 4, "anchor_tokens_s": a["tokens_per_s"], "capcse_tokens_s": c["tokens_per_s"],
               "capcse_gflops": c["gflops_per_s"], "capcse_frac_bf16_matmul": c["gflops_per_s"] / peak["bf16"],
               "anchor_frac_fp32_matmul": a["gflops_per_s"] / peak["fp32"], "matmul_fp32": peak["fp32"],
               "matmul_bf16": peak["bf16"], "steps": args.steps, "warmup": args.warmup, "blocks": c["blocks"],
               "load_start": load, "load_end": os.getloadavg()[0]}
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "matmul_runs": peaks, "workers": results}, indent=2))
    print("RESULT pretrain_throughput " + " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
