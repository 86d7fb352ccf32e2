"""Where a SimCSE training step's time goes (all-MiniLM-L6-v2, 2 threads, bf16 autocast).

Times, on a fixed batch of 128 sequences (64 captions x 2 dropout views) of ``--width`` tokens:
forward + backward, and the AdamW step with torch's ``foreach`` kernel (the Trainer's ``adamw_torch``)
and the ``fused`` kernel (``adamw_torch_fused``, capcse's ``train.optim`` default); then forward +
backward again with capcse's CPU dropout (``train.fast_dropout``, ``capcse.models.dropout``), which the
``--compile`` measurement also uses. Also the one-off
cost of the token-count lengths that length grouping uses (Flickr30k Karpathy-train, 145,000 captions)
and their padding after grouping. ``--compile`` adds ``torch.compile`` (inductor, dynamic shapes):
compilation seconds and the step time over mixed widths.

    .venv/bin/python benchmarks/step_profile.py [--quick] [--compile] [--profile]

``--profile`` prints torch.profiler's op table (self CPU time per step) with torch's and with capcse's
dropout, and the share of the dropout-mask generator op (``bernoulli_`` / ``random_``) as
``torch_dropout_mask_share`` / ``fast_dropout_mask_share``; also the matrix products' share of the step
(``*_matmul_share``), their rate from the profiler's FLOP counts (``*_matmul_gflops``) and that rate as a
fraction of a 2048 x 2048 bf16 ``torch.matmul`` timed in the same run (``*_matmul_frac_of_bf16``).

Last line: ``RESULT step_profile ratio=<fused / foreach optimizer seconds> target=1`` plus the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm")  # the kernels; aten::matmul dispatches to them


def matmul_time_and_flops(ops) -> tuple[float, float]:
    """Self CPU microseconds and FLOPs of the matrix-product kernels in a ``torch.profiler`` table
    (``key_averages()`` of a ``with_flops=True`` profile)."""
    mm = [e for e in ops if e.key in MATMUL_OPS]
    return sum(e.self_cpu_time_total for e in mm), float(sum(e.flops for e in mm))


def main() -> None:
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from capcse.models.encoder import load_sentence_transformer
    from capcse.train.batching import text_lengths, token_lengths
    from capcse.train.data import load_train_dataset

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_throughput import matmul_gflops  # same 2048^2 reference as the throughput benchmark

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 timed steps per measurement, no length pass")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (~2-3 min to compile)")
    ap.add_argument("--profile", action="store_true",
                    help="print torch.profiler's op table (self CPU time) for 3 steps with torch's and with "
                         "capcse's dropout")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("CAPCSE_DATA") or str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = 3 if args.quick else 8
    model = load_sentence_transformer("all-MiniLM-L6-v2", device="cpu", max_length=32)
    model.train()
    texts = ["a man in a red shirt is riding a bike down a busy street in the city ."] * 128
    base = {k: v for k, v in model.preprocess(texts).items() if torch.is_tensor(v)}
    hf = model[0].auto_model

    def step(net, opt, width):
        f = {k: v[:, :width] for k, v in base.items()}
        a = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = net(**f).last_hidden_state
            z = (h * f["attention_mask"].unsqueeze(-1)).sum(1)
        z.float().pow(2).sum().backward()
        b = time.perf_counter()
        opt.step()
        opt.zero_grad()
        return b - a, time.perf_counter() - b

    def profile(name):
        """torch.profiler over 3 steps of the current model (fused AdamW): top ops, the dropout-mask share
        and the matrix products' share and rate."""
        from torch.profiler import profile as torch_profile

        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        step(hf, opt, args.width)
        with torch_profile(with_flops=True) as prof:
            for _ in range(3):
                step(hf, opt, args.width)
        ops = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in ops)
        print(f"--- profile, {name} (3 steps, self CPU time per step) ---")
        for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:15]:
            print(f"{e.key:40} {e.self_cpu_time_total / 3e3:8.1f} ms {e.self_cpu_time_total / total:6.1%}")
        mask_ops = ("aten::bernoulli_", "aten::random_")
        figures[f"{name}_mask_share"] = sum(e.self_cpu_time_total for e in ops if e.key in mask_ops) / total
        # The matrix products inside the step (the profiler counts their FLOPs) against a bare bf16 matmul
        # measured right after: how far the step is from "all matmul at this CPU's bf16 rate".
        mm_us, mm_flops = matmul_time_and_flops(ops)
        figures[f"{name}_matmul_share"] = mm_us / total
        figures[f"{name}_matmul_gflops"] = mm_flops / (mm_us * 1e-6) / 1e9
        if "matmul_bf16_2048_gflops" not in figures:  # once per run (setdefault would time it every call)
            figures["matmul_bf16_2048_gflops"] = matmul_gflops("bf16")
        figures[f"{name}_matmul_frac_of_bf16"] = (figures[f"{name}_matmul_gflops"]
                                                   / figures["matmul_bf16_2048_gflops"])
        print(f"matrix products: {mm_us / total:.1%} of the step at {figures[f'{name}_matmul_gflops']:.0f} GFLOP/s "
              f"= {figures[f'{name}_matmul_frac_of_bf16']:.0%} of a 2048^2 bf16 torch.matmul "
              f"({figures['matmul_bf16_2048_gflops']:.0f} GFLOP/s, same run); the rest "
              f"{(total - mm_us) / 3e3:.0f} ms per step", flush=True)

    figures = {}
    if args.profile:
        profile("torch_dropout")
    for kind in ("foreach", "fused"):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, **{kind: True})
        for _ in range(2):
            step(hf, opt, args.width)
        times = [step(hf, opt, args.width) for _ in range(steps)]
        figures[f"{kind}_fwd_bwd_s"] = sum(t[0] for t in times) / steps
        figures[f"{kind}_optim_s"] = sum(t[1] for t in times) / steps
        print(f"{kind:8}: forward+backward {figures[f'{kind}_fwd_bwd_s']:.3f} s, optimizer "
              f"{figures[f'{kind}_optim_s']:.3f} s per step ({steps} steps, width {args.width})", flush=True)
    # capcse's CPU default, train.fast_dropout: cheap dropout masks (capcse.models.dropout)
    from capcse.models.dropout import use_fast_dropout

    use_fast_dropout(hf)
    if args.profile:
        profile("fast_dropout")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    for _ in range(2):
        step(hf, opt, args.width)
    times = [step(hf, opt, args.width) for _ in range(steps)]
    figures["fast_dropout_fwd_bwd_s"] = sum(t[0] for t in times) / steps
    print(f"fast dropout: forward+backward {figures['fast_dropout_fwd_bwd_s']:.3f} s per step (fused AdamW; "
          f"torch's dropout above: {figures['fused_fwd_bwd_s']:.3f} s)", flush=True)
    if args.compile:
        widths = [14, 16, 15, 13, 16, 14, 16, 12][:steps]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        for name, net in (("eager", hf), ("compiled", torch.compile(hf, dynamic=True))):
            t = time.perf_counter()
            step(net, opt, 16)
            step(net, opt, 12)
            first = time.perf_counter() - t
            per = sum(sum(step(net, opt, w)) for w in widths) / len(widths)
            figures[f"{name}_first_two_s"], figures[f"{name}_step_s"] = first, per
            print(f"{name:8}: first two steps {first:.1f} s, then {per:.3f} s per step", flush=True)
    if not args.quick:
        ds = load_train_dataset("flickr30k-captions", data_dir=args.data_dir)
        t = time.perf_counter()
        tokens = token_lengths(ds, model.tokenizer, 32)
        figures["token_lengths_s"] = time.perf_counter() - t
        for name, lens in (("tokens", tokens), ("chars", text_lengths(ds))):
            g = torch.Generator()
            g.manual_seed(0)
            order = get_length_grouped_indices(lens.tolist(), 64, generator=g)
            batches = [order[i:i + 64] for i in range(0, len(order), 64)]
            padded = sum(tokens[b].max() * len(b) for b in batches)
            figures[f"padding_{name}"] = 1 - sum(tokens[b].sum() for b in batches) / padded
        print(f"token lengths of {len(ds)} captions: {figures['token_lengths_s']:.1f} s; padding of 64-caption "
              f"batches grouped by tokens {figures['padding_tokens']:.1%}, by characters {figures['padding_chars']:.1%}")
    ratio = figures["fused_optim_s"] / figures["foreach_optim_s"]
    print(f"RESULT step_profile ratio={ratio:.3f} target=1 "
          + " ".join(f"{k}={v:.4g}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
