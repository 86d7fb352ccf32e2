"""CPU-scale SimCSE experiment: what does a short SimCSE run do to all-MiniLM-L6-v2?

Every trained condition starts from all-MiniLM-L6-v2 and gets the same budget (``--steps`` optimizer
steps of ``--batch-size`` examples, ``--max-length`` tokens in training), for ``--seeds``:

=====================  =====================================================================================
condition              run
=====================  =====================================================================================
untrained              no training; the model's own mean pooling (reference)
untrained-cls          no training; [CLS] of the last layer (``cls_before_pooler``)
untrained-maxlen32     no training, inference truncated to 32 tokens (what a trained model's own saved
                       config gives; see below)
unsup-wiki             unsupervised SimCSE (``simcse-unsup-bert-base`` values: lr 3e-5, temperature 0.05),
                       mean pooling, on the wiki1m prefix (11,914 sentences)
unsup-flickr           the same on the Flickr30k Karpathy-train captions (145,000)
sup-snli               supervised SimCSE (``simcse-sup-bert-base`` values: lr 5e-5, hard negatives), mean
                       pooling, on triplets built with ``capcse triplets`` from SNLI dev + test
unsup-wiki-cls         SimCSE's unsupervised setting proper: [CLS] through a fresh MLP in training only
                       (``pooler cls``, ``mlp_only_train``), evaluated on [CLS] before the MLP
unsup-flickr-fp32      ablation: ``unsup-flickr`` without capcse's speed settings (fp32, random batches)
=====================  =====================================================================================

Training goes through ``capcse train`` (a subprocess per run, so each run is exactly the user's
command); the trained conditions use bf16 autocast and length-grouped batches (``train.precision=bf16``,
``train.group_by_length=true``, measured by benchmarks/train_throughput.py), except the ablation.
Evaluation: the STS test table of ``capcse eval`` (SentEval's tokenised text, cosine Spearman x100,
STS12-16 'all' aggregation), run by :func:`capcse.evaluation.run_evaluation` in a subprocess, with one
difference from ``capcse eval <trained model>``: the encoder's inference length is set to the starting
model's (256 tokens). ``capcse train`` saves its model with ``max_seq_length`` = the *training*
``max_length`` (32), so the saved model would truncate test sentences that the untrained reference sees
whole; the ``untrained-maxlen32`` row shows what that truncation alone costs.

Resumable: a run whose ``result.json`` exists is skipped; an interrupted run is restarted from scratch.
Everything lands in ``--out`` (``runs/<condition>-s<seed>/`` and ``experiment.json``, written after
every run). The last line is ``RESULT simcse_experiment ratio=<best trained mean Avg. / untrained Avg.>
target=1`` (does any short training beat the starting model?).

    nice -n 10 .venv/bin/python benchmarks/simcse_experiment.py            # all conditions, 3 seeds
    .venv/bin/python benchmarks/simcse_experiment.py --quick               # 3 conditions, 1 seed, 5 steps, dev sets
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "all-MiniLM-L6-v2"
STS_COLUMNS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R")

# condition -> (recipe, data key, pooler at evaluation, extra --set overrides); None recipe = no training
CONDITIONS: dict[str, dict] = {
    "untrained": {"recipe": None, "pooler": None, "max_seq_length": None},
    "untrained-cls": {"recipe": None, "pooler": "cls_before_pooler", "max_seq_length": None},
    "untrained-maxlen32": {"recipe": None, "pooler": None, "max_seq_length": 32},
    "unsup-wiki": {"recipe": "simcse-unsup-bert-base", "data": "wiki", "pooler": "avg", "mlp_only_train": False},
    "unsup-flickr": {"recipe": "simcse-unsup-bert-base", "data": "flickr", "pooler": "avg", "mlp_only_train": False},
    "sup-snli": {"recipe": "simcse-sup-bert-base", "data": "snli", "pooler": "avg", "mlp_only_train": False},
    "unsup-wiki-cls": {"recipe": "simcse-unsup-bert-base", "data": "wiki", "pooler": "cls", "mlp_only_train": True},
    "unsup-flickr-fp32": {"recipe": "simcse-unsup-bert-base", "data": "flickr", "pooler": "avg",
                          "mlp_only_train": False, "fast": False},
}
QUICK_CONDITIONS = ("untrained", "unsup-flickr", "sup-snli")


def default_data_dir() -> str | None:
    env = os.environ.get("CAPCSE_DATA")
    if env:
        return env
    cand = ROOT.parent / "shared" / "data"
    return str(cand) if cand.is_dir() else None


def capcse_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("capcse")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "capcse"]


def snli_triplets(data_dir: str, out_dir: Path, log) -> Path:
    """SNLI dev + test -> one SimCSE triplet CSV, through ``capcse triplets`` (one call per split: its
    ``--split`` applies to every ``--nli`` input), concatenated under one header."""
    from capcse.io import atomic_write_text

    target = out_dir / "snli_devtest_triplets.csv"
    if target.is_file():
        return target
    snli = Path(data_dir) / "downstream" / "SNLI"
    parts = []
    for split in ("dev", "test"):
        part = out_dir / f"snli_{split}_triplets.csv"
        cmd = capcse_cmd() + ["triplets", "--nli", str(snli), "--split", split, "--out", str(part)]
        log("$ " + " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log(proc.stdout.strip())
        if proc.returncode:
            raise SystemExit(f"capcse triplets failed:\n{proc.stderr}")
        parts.append(part.read_text(encoding="utf-8").splitlines(keepends=True))
    header = parts[0][0]
    assert all(p[0] == header for p in parts), "triplet files disagree on their header"
    atomic_write_text(target, header + "".join(line for p in parts for line in p[1:]))
    return target


def data_paths(data_dir: str, out_dir: Path, log) -> dict[str, str]:
    wiki = sorted((Path(data_dir) / "wiki1m_prefix").glob("wiki1m*.txt"))
    if len(wiki) != 1:
        raise SystemExit(f"expected one .txt in {Path(data_dir) / 'wiki1m_prefix'}, found {wiki}")
    return {"wiki": str(wiki[0]), "flickr": "flickr30k-captions", "snli": str(snli_triplets(data_dir, out_dir, log))}


def train_command(cond: dict, data: str, seed: int, args, run_dir: Path) -> list[str]:
    fast = cond.get("fast", True)
    sets = {
        "model.name": args.model, "model.pooler": cond["pooler"],
        "model.mlp_only_train": str(cond["mlp_only_train"]).lower(), "model.max_length": args.max_length,
        "data.train": data, "train.batch_size": args.batch_size, "train.max_steps": args.steps,
        "train.seed": seed, "train.precision": "bf16" if fast else "fp32",
        "train.group_by_length": "true" if fast else "false", "train.torch_threads": args.threads,
        "train.report_to": "[none]", "train.logging_steps": 10, "eval.during": "none", "eval.final": "[none]",
    }
    cmd = capcse_cmd() + ["train", cond["recipe"], "--output", str(run_dir / "train"), "--data-dir", args.data_dir]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def eval_command(model: str, pooler: str | None, max_seq_length: int | None, args, out: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--eval-worker", model, "--out", str(out),
           "--mode", args.mode, "--data-dir", args.data_dir, "--model", args.model, "--threads", str(args.threads)]
    if pooler:
        cmd += ["--pooler", pooler]
    if max_seq_length:
        cmd += ["--max-seq-length", str(max_seq_length)]
    return cmd


def eval_worker(args) -> int:
    """``capcse eval MODEL --tasks sts --mode M`` (SentEval text), with the encoder's inference length
    set to ``--max-seq-length`` (default: the starting model's)."""
    import torch

    from capcse.evaluation import run_evaluation
    from capcse.models import load_encoder
    from capcse.models.encoder import load_sentence_transformer
    from capcse.report import write_report

    torch.set_num_threads(args.threads)
    encoder = load_encoder(args.eval_worker, pooler=args.pooler, device="cpu", dtype="fp32")
    length = args.max_seq_length or load_sentence_transformer(args.model, device="cpu").max_seq_length
    encoder.model.max_seq_length = length
    result = run_evaluation(encoder, "sts", args.mode, data_dir=args.data_dir, variant="senteval",
                            name=args.eval_worker, log=lambda m: print(m, file=sys.stderr, flush=True))
    result.settings.update({"pooler": args.pooler, "max_seq_length": length, "dtype": "fp32"})
    write_report(result, args.out, plots=False)
    table = {r.name: r.spearman for r in result.sts.tasks.values()}
    table["Avg."] = result.sts_avg()
    print(json.dumps({"table": table, "max_seq_length": length, "seconds": result.timing.get("total_seconds")}))
    return 0


def run_logged(cmd: list[str], log_path: Path) -> tuple[int, str, float]:
    """Run ``cmd`` (stderr to the run's log); returns exit code, stdout and the CPU seconds it used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True)
        fh.write(proc.stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, proc.stdout, cpu


def do_run(name: str, seed: int | None, args, data: dict[str, str], log) -> dict:
    from capcse.io import atomic_write_json

    cond = CONDITIONS[name]
    run_dir = Path(args.out) / "runs" / (name if seed is None else f"{name}-s{seed}")
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an interrupted run: start it again
    run_dir.mkdir(parents=True)
    log_path = run_dir / "log.txt"
    record: dict = {"condition": name, "seed": seed, "steps": 0}
    t0 = time.perf_counter()
    if cond["recipe"] is None:
        model, pooler, length = args.model, cond["pooler"], cond["max_seq_length"]
    else:
        cmd = train_command(cond, data[cond["data"]], seed, args, run_dir)
        log(f"[{name} seed {seed}] training: " + " ".join(cmd))
        rc, _, cpu = run_logged(cmd, log_path)
        if rc:
            raise SystemExit(f"{name} seed {seed}: capcse train failed (exit {rc}); see {log_path}")
        record["train_cpu_seconds"] = round(cpu, 1)
        summary = json.loads((run_dir / "train" / "train_summary.json").read_text(encoding="utf-8"))
        record.update(steps=summary["steps"], train_seconds=summary["train_seconds"], losses=summary["losses"],
                      command=" ".join(cmd))
        for ckpt in (run_dir / "train").glob("checkpoint-*"):  # optimizer state: not needed afterwards
            shutil.rmtree(ckpt)
        model = str(run_dir / "train" / "model")
        pooler = "cls_before_pooler" if cond["pooler"] == "cls" and cond["mlp_only_train"] else None
        length = None
    t1 = time.perf_counter()
    cmd = eval_command(model, pooler, length, args, run_dir / "eval")
    log(f"[{name} seed {seed}] evaluating: " + " ".join(cmd))
    rc, out, cpu = run_logged(cmd, log_path)
    if rc:
        raise SystemExit(f"{name} seed {seed}: evaluation failed (exit {rc}); see {log_path}")
    record["eval_cpu_seconds"] = round(cpu, 1)
    ev = json.loads(out.strip().splitlines()[-1])
    record.update(model=model, eval_pooler=pooler or "model's own", eval_max_seq_length=ev["max_seq_length"],
                  sts=ev["table"], wall_train_seconds=round(t1 - t0, 1), wall_eval_seconds=round(time.perf_counter() - t1, 1))
    atomic_write_json(done, record)
    log(f"[{name} seed {seed}] Avg. {ev['table']['Avg.']:.2f}  (wall: train {t1 - t0:.0f} s, eval "
        f"{time.perf_counter() - t1:.0f} s; CPU: train {record.get('train_cpu_seconds', 0):.0f} s, eval {cpu:.0f} s)")
    return record


def summarise(records: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name in CONDITIONS:
        runs = [r for r in records if r["condition"] == name]
        if not runs:
            continue
        cols = list(runs[0]["sts"])
        stats = {}
        for col in cols:
            vals = [r["sts"][col] for r in runs]
            stats[col] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                          "n": len(vals)}
        out[name] = stats
    return out


def cpu_totals(records: list[dict]) -> dict[str, float]:
    train = sum(r.get("train_cpu_seconds", 0.0) for r in records)
    evals = sum(r.get("eval_cpu_seconds", 0.0) for r in records)
    return {"train": round(train, 1), "eval": round(evals, 1), "total": round(train + evals, 1),
            "runs_without_cpu_record": sum("eval_cpu_seconds" not in r for r in records)}


def markdown_table(summary: dict[str, dict]) -> str:
    cols = [c for c in next(iter(summary.values()))]
    lines = ["| condition | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, stats in summary.items():
        cells = []
        for c in cols:
            s = stats.get(c)
            cells.append("—" if s is None else (f"{s['mean']:.2f}" if s["n"] == 1 else f"{s['mean']:.2f} ± {s['std']:.2f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "outputs" / "simcse_experiment"))
    ap.add_argument("--data-dir", default=default_data_dir())
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=("test", "dev"), default="test")
    ap.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    ap.add_argument("--quick", action="store_true", help="3 conditions, 1 seed, 5 steps, STS-B/SICK-R dev")
    ap.add_argument("--eval-worker", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--pooler", help=argparse.SUPPRESS)
    ap.add_argument("--max-seq-length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.data_dir is None:
        raise SystemExit("no data folder: give --data-dir or set CAPCSE_DATA")
    if args.eval_worker:
        return eval_worker(args)
    if args.quick:
        args.seeds, args.steps, args.mode = args.seeds[:1], 5, "dev"
        args.conditions = [c for c in args.conditions if c in QUICK_CONDITIONS]
        if args.out == str(ROOT / "outputs" / "simcse_experiment"):
            args.out += "_quick"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from capcse.io import atomic_write_json

    def log(msg: str) -> None:
        print(msg, flush=True)

    data = data_paths(args.data_dir, out, log)
    settings = {k: getattr(args, k) for k in ("model", "seeds", "steps", "batch_size", "max_length", "threads",
                                              "mode", "conditions", "data_dir")}
    log(f"settings: {settings}")
    records: list[dict] = []
    for seed_index, seed in enumerate(args.seeds):
        for name in args.conditions:
            if CONDITIONS[name]["recipe"] is None and seed_index > 0:
                continue  # no training: deterministic, evaluated once
            records.append(do_run(name, None if CONDITIONS[name]["recipe"] is None else seed, args, data, log))
            summary = summarise(records)
            atomic_write_json(out / "experiment.json", {"settings": settings, "data": data, "runs": records,
                                                         "summary": summary, "cpu_seconds": cpu_totals(records)})
    summary = summarise(records)
    table = markdown_table(summary)
    print("\n" + table)
    print(f"CPU seconds (user + sys of the train / eval subprocesses): {cpu_totals(records)}")
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    base = summary.get("untrained", {}).get("Avg.", {}).get("mean")
    trained = {n: s["Avg."]["mean"] for n, s in summary.items() if CONDITIONS[n]["recipe"] is not None}
    best = max(trained, key=trained.get) if trained else None
    figures = " ".join(f"{n}={s['Avg.']['mean']:.2f}" for n, s in summary.items())
    ratio = trained[best] / base if best and base else float("nan")
    print(f"RESULT simcse_experiment ratio={ratio:.4f} target=1 best={best} {figures} steps={args.steps} "
          f"seeds={len(args.seeds)} mode={args.mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
