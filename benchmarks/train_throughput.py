"""Training throughput: capcse's SimCSE training vs the sentence-transformers stock recipe.

Unsupervised SimCSE on the Flickr30k Karpathy-train captions (``load_caption_table('flickr30k-captions')``,
split train: 145,000 captions), batch 64, max_len 32, learning rate 3e-5 (linear decay, no warm-up),
seed 42, ``torch.set_num_threads(2)``, the same number of optimizer steps on every side. Each side runs
in its own subprocess (so that its peak RSS, ``ru_maxrss``, is its own):

* anchor -- the stock recipe: ``MultipleNegativesRankingLoss`` (scale 20 = temperature 0.05, cosine)
  on a dataset with two identical columns (``anchor``, ``positive``) and ``SentenceTransformerTrainer``
  with its default settings (fp32, random batches; the loss embeds each column in its own forward).
* capcse -- the real training path of ``capcse train`` (the functions ``run_training`` is made of:
  ``build_model``, ``load_train_dataset``, ``build_objective`` -> :class:`SimCSEObjective`, one forward
  of the concatenated [2N] batch; ``training_arguments``; the same ``SentenceTransformerTrainer``) with
  the recipe ``simcse-unsup-bert-base`` (batch 64, max_len 32, lr 3e-5, temperature 0.05) and the
  model's own mean pooling (what the anchor trains). The variants show what each switch contributes:
  ``train.precision`` fp32 / bf16 (autocast) x ``train.group_by_length`` off / on, all with capcse's
  default ``train.fast_dropout: auto`` (on a CPU: dropout masks from fewer generator calls,
  ``capcse.models.dropout``), and the headline setting once more with torch's own dropout
  (``capcse-bf16-grouped-torch-dropout``).

Both losses are the same equation (InfoNCE over cosine / 0.05 with in-batch negatives; the two views
of a caption differ by dropout only), so the STS-B dev Spearman after the same steps compares the
implementations, not two objectives. Nothing is saved during training (``save_strategy`` no).

Measured (the first ``--warmup`` steps are excluded; the timed region is ``--steps`` steps, from the
end of the last warm-up step to the end of the last step, i.e. data loading + collation + forward +
backward + optimizer; model load and data preparation are timed separately):

* sentences/s: input sentences (captions) per second = steps x 64 / seconds. Each caption is encoded
  twice (two dropout views), so the encoder sees twice as many sequences; both sides count the same way.
  Length-grouped batches come in length buckets visited in random order, so a run of a few steps may
  draw shorter (or longer) captions than the random batches: the table gives the mean real tokens per
  caption of the timed steps, and real tokens/s (``tokens_x`` in the RESULT line) as a length-fair ratio.
* peak RSS of each subprocess (``ru_maxrss``, read right after training, before evaluation).
* STS-B dev cosine Spearman x100 (SentEval text) of the trained model (skipped for the random model).
* model FLOPs per training step = 3 x forward (backward = 2 x forward), forward FLOPs of a sequence of
  ``s`` positions through ``L`` layers of width ``d`` and feed-forward ``f``:
  ``L * (2*s*(4*d*d + 2*d*f) + 4*s*s*d)`` (Q,K,V,O and the two FFN matrices; ``QK^T`` and ``AV``).
  *executed* FLOPs use the padded width of every batch for ``s`` (what the hardware computes);
  *useful* FLOPs use each sentence's real token count. Non-matmul work (embeddings, layer norm, softmax,
  GELU, pooling, the loss) is not counted. Achieved GFLOP/s are given as a fraction of ``torch.matmul``
  (2048 x 2048, fp32 and bf16) measured in the same run, before and after the workers (the higher of
  the two is the reference).

The last line is ``RESULT train_throughput ratio=<capcse bf16 grouped / anchor sentences per second>
target=4`` with the other figures as key=value pairs.

    .venv/bin/python benchmarks/train_throughput.py                 # all-MiniLM-L6-v2, 5 + 100 steps
    .venv/bin/python benchmarks/train_throughput.py --quick         # 2 + 6 steps, STS-B dev first 300 pairs
    .venv/bin/python benchmarks/train_throughput.py --model bert-base-random   # BertConfig() random weights,
                                                                    # MiniLM tokenizer; throughput only
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
BATCH, MAX_LEN, LR, SEED = 64, 32, 3e-5, 42
VARIANTS = {  # name -> (precision, group_by_length, fast_dropout); None = the anchor
    "anchor": None,
    "capcse-fp32": ("fp32", False, "auto"),
    "capcse-fp32-grouped": ("fp32", True, "auto"),
    "capcse-bf16": ("bf16", False, "auto"),
    "capcse-bf16-grouped-torch-dropout": ("bf16", True, "off"),
    "capcse-bf16-grouped": ("bf16", True, "auto"),
}
HEADLINE = "capcse-bf16-grouped"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capcse.experiment.spec import default_data_dir  # noqa: E402  ($CAPCSE_DATA, else ../shared/data)


# ------------------------------------------------------------------------------------------ FLOPs
def forward_flops(width: int, layers: int, hidden: int, ffn: int) -> int:
    """Matmul FLOPs of one sequence of ``width`` positions through the encoder (see module docstring)."""
    return layers * (2 * width * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * width * width * hidden)


def matmul_gflops(dtype_name: str, n: int = 2048, min_seconds: float = 1.0) -> float:
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(3):
        torch.matmul(a, b)
    reps, t0 = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        reps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds and reps >= 3:
            break
    return 2 * n ** 3 * reps / elapsed / 1e9


# ----------------------------------------------------------------------------------------- worker
class StepClock:
    """Times steps ``warmup+1 .. warmup+steps`` (end of step to end of step) and switches the token
    counter on for exactly those steps."""

    def __init__(self, warmup: int, steps: int, counter: "TokenCounter"):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                clock.marks[0] = time.perf_counter()
                counter.active = warmup == 0

            def on_step_end(self, args, state, control, **kwargs):
                clock.marks[state.global_step] = time.perf_counter()
                counter.active = warmup <= state.global_step < warmup + steps

        self.warmup, self.steps, self.marks = warmup, steps, {}
        self.callback = _Callback()

    def seconds(self) -> float:
        return self.marks[self.warmup + self.steps] - self.marks[self.warmup]


class TokenCounter:
    """Forward pre-hook on the Transformer module: per forward call, the padded shape and the real
    token count of the batch (every call of the timed steps, whatever the loss does)."""

    def __init__(self, module):
        self.active = False
        self.calls: list[tuple[int, int]] = []        # (rows, padded width)
        self.real_lengths: list[int] = []
        self.autocast: set[bool] = set()
        module.register_forward_pre_hook(self._hook)

    def _hook(self, module, inputs):
        import torch

        if not self.active or not module.training:
            return None
        features = inputs[0]
        mask = features["attention_mask"]
        self.calls.append((int(mask.size(0)), int(mask.size(1))))
        self.real_lengths.extend(int(n) for n in mask.sum(dim=1).tolist())
        self.autocast.add(bool(torch.is_autocast_enabled("cpu")))
        return None

    def flops(self, layers: int, hidden: int, ffn: int) -> dict[str, float]:
        executed = sum(rows * forward_flops(width, layers, hidden, ffn) for rows, width in self.calls)
        useful = sum(forward_flops(n, layers, hidden, ffn) for n in self.real_lengths)
        padded_tokens = sum(rows * width for rows, width in self.calls)
        real_tokens = sum(self.real_lengths)
        return {"executed_flops": 3.0 * executed, "useful_flops": 3.0 * useful, "forward_calls": len(self.calls),
                "sequences": len(self.real_lengths), "padded_tokens": padded_tokens, "real_tokens": real_tokens,
                "padding_fraction": 1 - real_tokens / padded_tokens if padded_tokens else 0.0,
                "mean_real_tokens": real_tokens / max(len(self.real_lengths), 1)}


def flickr_captions(data_dir: str | None) -> list[str]:
    from capcse.data import load_caption_table

    return [r.caption for r in load_caption_table("flickr30k-captions", data_dir=data_dir, split="train")]


def build_anchor(model_path: str, data_dir: str | None, out_dir: str, total_steps: int):
    """The stock recipe: MultipleNegativesRankingLoss on (caption, same caption), stock Trainer."""
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    t0 = time.perf_counter()
    captions = flickr_captions(data_dir)
    dataset = Dataset.from_dict({"anchor": captions, "positive": captions})
    t1 = time.perf_counter()
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = MAX_LEN
    t2 = time.perf_counter()
    args = SentenceTransformerTrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=total_steps, seed=SEED,
        save_strategy="no", report_to="none", logging_steps=10, use_cpu=True, disable_tqdm=True)
    loss = MultipleNegativesRankingLoss(model)
    return model, dataset, loss, args, t1 - t0, t2 - t1


def build_capcse(model_path: str, data_dir: str | None, out_dir: str, total_steps: int, precision: str,
                 grouped: bool, threads: int, fast_dropout: str = "auto"):
    """``capcse train simcse-unsup-bert-base`` with the benchmark's settings, built by the functions
    ``capcse.train.trainer.run_training`` calls (it adds only saving and evaluation around them)."""
    from transformers import set_seed
    from transformers.trainer_utils import SaveStrategy

    import capcse.models.encoder  # noqa: F401  (imports are not model-load time, as for the anchor)
    import capcse.models.heads  # noqa: F401
    from capcse.train.data import load_train_dataset
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import build_model, build_objective, training_arguments

    recipe = load_recipe("simcse-unsup-bert-base", [
        f"model.name={model_path}", "model.pooler=avg", "model.mlp_only_train=false", f"model.max_length={MAX_LEN}",
        "data.train=flickr30k-captions", f"train.batch_size={BATCH}", f"train.learning_rate={LR}",
        f"train.max_steps={total_steps}", f"train.seed={SEED}", f"train.precision={precision}",
        f"train.group_by_length={str(grouped).lower()}", f"train.fast_dropout={fast_dropout}",
        f"train.torch_threads={threads}", "train.report_to=[none]",
        "train.logging_steps=10", "eval.during=none", "eval.final=[none]", f"train.output_dir={out_dir}",
        "train.device=cpu"])
    set_seed(recipe.train.seed)
    t0 = time.perf_counter()
    dataset = load_train_dataset(recipe.data.train, fmt=recipe.data.format, columns=recipe.data.columns,
                                 limit=recipe.data.limit, data_dir=data_dir)
    t1 = time.perf_counter()
    model = build_model(recipe)
    # build_model keeps the inference length (256) and run_training cuts training batches at model.max_length
    # through the collator; here, as for the stock variant, training and the dev score both use MAX_LEN.
    model.max_seq_length = MAX_LEN
    t2 = time.perf_counter()
    objective = build_objective(recipe, model)
    args = training_arguments(recipe, evaluate=False, tokenizer=model.tokenizer)  # as run_training does
    args.save_strategy = SaveStrategy.NO
    return model, dataset, objective, args, t1 - t0, t2 - t1


def stsb_dev(model, data_dir: str | None, limit: int | None) -> float:
    from capcse.data import STSData
    from capcse.evaluation import evaluate_sts
    from capcse.evaluation.sts import load_sts_tasks
    from capcse.models.encoder import SentenceEncoder

    datasets = load_sts_tasks(("stsb",), "dev", data_dir=data_dir, variant="senteval")
    if limit:
        datasets = {t: (split, {k: STSData(d.name, d.sentences1[:limit], d.sentences2[:limit], d.scores[:limit],
                                           d.source) for k, d in subs.items()})
                    for t, (split, subs) in datasets.items()}
    model.eval()
    encoder = SentenceEncoder(model, name="benchmark", device=model.device)
    return float(evaluate_sts(encoder, datasets=datasets, mode="dev").tasks["stsb"].spearman)


def worker(args) -> dict:
    import resource

    import torch

    torch.set_num_threads(args.threads)
    variant = args.worker
    total = args.warmup + args.steps
    with tempfile.TemporaryDirectory(prefix="capcse-throughput-") as tmp:
        if variant == "untrained":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(args.model_path, device="cpu")
            return {"variant": variant, "stsb_dev": stsb_dev(model, args.data_dir, args.sts_limit)}
        if VARIANTS[variant] is None:
            model, dataset, loss, targs, prep, load = build_anchor(args.model_path, args.data_dir, tmp, total)
        else:
            precision, grouped, fast_dropout = VARIANTS[variant]
            model, dataset, loss, targs, prep, load = build_capcse(args.model_path, args.data_dir, tmp, total,
                                                                   precision, grouped, args.threads, fast_dropout)
        from sentence_transformers import SentenceTransformerTrainer

        counter = TokenCounter(model[0])
        clock = StepClock(args.warmup, args.steps, counter)
        trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=dataset, loss=loss,
                                             callbacks=[clock.callback])
        t0 = time.perf_counter()
        trainer.train()
        train_wall = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seconds = clock.seconds()
        cfg = model[0].auto_model.config
        flops = counter.flops(cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size)
        out = {"variant": variant, "steps": args.steps, "warmup": args.warmup, "seconds": seconds,
               "sentences_per_s": args.steps * BATCH / seconds, "sequences_per_s": flops["sequences"] / seconds,
               "real_tokens_per_s": flops["real_tokens"] / seconds,
               "peak_rss_mb": rss_mb, "prep_seconds": prep, "model_load_seconds": load,
               "train_call_seconds": train_wall, "warmup_seconds": clock.marks[args.warmup] - clock.marks[0],
               "autocast": sorted(counter.autocast), "threads": torch.get_num_threads(),
               "executed_gflops_per_s": flops["executed_flops"] / seconds / 1e9,
               "useful_gflops_per_s": flops["useful_flops"] / seconds / 1e9, **flops,
               "final_loss": next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), None)}
        if not args.no_sts:
            t1 = time.perf_counter()
            out["stsb_dev"] = stsb_dev(trainer.model, args.data_dir, args.sts_limit)
            out["sts_seconds"] = time.perf_counter() - t1
        return out


# ----------------------------------------------------------------------------------------- parent
def random_bert(folder: Path, tokenizer_from: str) -> str:
    """BertConfig() defaults (bert-base size: 12 layers, 768 wide, 3072 FFN) with random weights and
    the MiniLM tokenizer (bert-base-uncased's WordPiece vocabulary, 30,522 entries)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(SEED)
    BertModel(BertConfig()).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(str(folder))
    return str(folder)


def run_worker(variant: str, args, model_path: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, "--model-path", model_path,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.no_sts:
        cmd.append("--no-sts")
    if args.sts_limit:
        cmd += ["--sts-limit", str(args.sts_limit)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"worker {variant} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2",
                    help="all-MiniLM-L6-v2 (default), bert-base-random (throughput only), or a model path")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 100; bert-base-random 20)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 5; --quick 2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=default_data_dir())
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--quick", action="store_true", help="6 timed steps after 2 warm-up steps, STS-B dev first 300 pairs")
    ap.add_argument("--no-sts", action="store_true", help="skip the STS-B dev evaluation")
    ap.add_argument("--sts-limit", type=int, default=None, help="first N STS-B dev pairs only")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    random_model = args.model == "bert-base-random"
    if args.quick:
        args.steps = args.steps or 6
        args.warmup = 2 if args.warmup is None else args.warmup
        args.sts_limit = args.sts_limit or 300
    args.steps = args.steps or (20 if random_model else 100)
    args.warmup = 5 if args.warmup is None else args.warmup
    if random_model:
        args.no_sts = True
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if HEADLINE not in args.variants or "anchor" not in args.variants:
        raise SystemExit(f"--variants must include anchor and {HEADLINE} (the RESULT ratio)")

    import torch

    from capcse.models.registry import resolve_model

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"model {args.model}; batch {BATCH}, max_len {MAX_LEN}, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{args.threads} threads; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs",
          flush=True)
    peaks = {d: [matmul_gflops(d)] for d in ("fp32", "bf16")}
    print(f"torch.matmul 2048^2: fp32 {peaks['fp32'][0]:.0f} GFLOP/s, bf16 {peaks['bf16'][0]:.0f} GFLOP/s", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="capcse-bert-random-") as tmp:
        model_path = random_bert(Path(tmp), resolve_model("all-MiniLM-L6-v2")) if random_model \
            else str(resolve_model(args.model))
        if not args.no_sts and not args.quick:
            results["untrained"] = run_worker("untrained", args, model_path)
            print(f"untrained: STS-B dev {results['untrained']['stsb_dev']:.2f}", flush=True)
        for variant in args.variants:
            results[variant] = r = run_worker(variant, args, model_path)
            sts = f", STS-B dev {r['stsb_dev']:.2f}" if "stsb_dev" in r else ""
            print(f"{variant}: {r['sentences_per_s']:.1f} sentences/s ({r['seconds']:.1f} s for {r['steps']} steps), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB, padding {100 * r['padding_fraction']:.1f} %, "
                  f"autocast {r['autocast']}{sts}; untimed: data {r['prep_seconds']:.1f} s, model {r['model_load_seconds']:.1f} s, "
                  f"{r['warmup']} warm-up steps {r['warmup_seconds']:.1f} s", flush=True)
    for d in peaks:
        peaks[d].append(matmul_gflops(d))
    peak = {d: max(v) for d, v in peaks.items()}
    load_end = os.getloadavg()

    anchor = results["anchor"]
    print(f"\ntorch.matmul 2048^2 (before / after): fp32 {peaks['fp32'][0]:.0f} / {peaks['fp32'][1]:.0f}, "
          f"bf16 {peaks['bf16'][0]:.0f} / {peaks['bf16'][1]:.0f} GFLOP/s; load average at the end {load_end[0]:.2f}")
    head = (f"{'variant':22} {'sent/s':>8} {'x anchor':>8} {'tok/sent':>8} {'RSS MB':>7} {'x anchor':>8} {'pad %':>6} {'exec GF/s':>9} "
            f"{'useful GF/s':>11} {'% fp32 mm':>9} {'% bf16 mm':>9} {'STS-B dev':>9}")
    print(head)
    for variant in args.variants:
        r = results[variant]
        sts = f"{r['stsb_dev']:9.2f}" if "stsb_dev" in r else f"{'—':>9}"
        print(f"{variant:22} {r['sentences_per_s']:8.1f} {r['sentences_per_s'] / anchor['sentences_per_s']:8.2f} "
              f"{r['mean_real_tokens']:8.1f} {r['peak_rss_mb']:7.0f} {r['peak_rss_mb'] / anchor['peak_rss_mb']:8.2f} "
              f"{100 * r['padding_fraction']:6.1f} {r['executed_gflops_per_s']:9.1f} {r['useful_gflops_per_s']:11.1f} "
              f"{100 * r['executed_gflops_per_s'] / peak['fp32']:9.1f} {100 * r['executed_gflops_per_s'] / peak['bf16']:9.1f} "
              f"{sts}")
    if "untrained" in results:
        print(f"{'(untrained)':22} {'':8} {'':8} {'':8} {'':7} {'':8} {'':6} {'':9} {'':11} {'':9} {'':9} "
              f"{results['untrained']['stsb_dev']:9.2f}")
    best = results[HEADLINE]
    ratio = best["sentences_per_s"] / anchor["sentences_per_s"]
    figures = {
        "capcse_sps": best["sentences_per_s"], "anchor_sps": anchor["sentences_per_s"],
        "tokens_x": best["real_tokens_per_s"] / anchor["real_tokens_per_s"],
        **{f"{v.replace('capcse-', '').replace('-', '_')}_x": results[v]["sentences_per_s"] / anchor["sentences_per_s"]
           for v in args.variants if v not in ("anchor", HEADLINE)},
        "rss_ratio": best["peak_rss_mb"] / anchor["peak_rss_mb"], "capcse_rss_mb": best["peak_rss_mb"],
        "anchor_rss_mb": anchor["peak_rss_mb"],
        "capcse_gflops": best["executed_gflops_per_s"], "capcse_useful_gflops": best["useful_gflops_per_s"],
        "capcse_frac_bf16_matmul": best["executed_gflops_per_s"] / peak["bf16"],
        "anchor_gflops": anchor["executed_gflops_per_s"],
        "anchor_frac_fp32_matmul": anchor["executed_gflops_per_s"] / peak["fp32"],
        "matmul_fp32": peak["fp32"], "matmul_bf16": peak["bf16"],
        "capcse_pad": best["padding_fraction"], "anchor_pad": anchor["padding_fraction"],
    }
    if "stsb_dev" in best:
        figures.update(capcse_stsb_dev=best["stsb_dev"], anchor_stsb_dev=anchor["stsb_dev"],
                       stsb_dev_diff=best["stsb_dev"] - anchor["stsb_dev"])
    figures.update(steps=args.steps, load=round(load[0], 2))
    if args.json:
        from capcse.io import atomic_write_json

        atomic_write_json(args.json, {"settings": {k: getattr(args, k) for k in ("model", "steps", "warmup", "threads",
                                                                                    "sts_limit", "quick")},
                                      "load_average": {"start": load, "end": load_end}, "matmul_gflops": peaks,
                                      "results": results, "figures": figures})
    print(f"RESULT train_throughput ratio={ratio:.3f} target=4 "
          + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
