"""Running an experiment: each run is ``capcse train`` + ``capcse eval`` (or a row's own commands) in
subprocesses, in its own folder ``OUT/runs/<row>[-s<seed>]/`` (``log.txt``: every command and its output).

A run is finished when its marker ``done.json`` exists (written atomically after every command succeeded
and the metrics file was found); finished runs are skipped, an unfinished run's folder is cleared and the
run starts again. A failed run stops the experiment (runs already going finish; finished runs stay) with a
:class:`ExperimentError` naming the run, its log and the log's last lines.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from capcse.errors import CapcseError, ConfigError
from capcse.experiment.spec import REPO_ROOT, Run, Spec, plan_runs, substitute

MARKER = "done.json"
LOG_TAIL = 15


class ExperimentError(CapcseError):
    """A run failed; the message names it, its log and the log's last lines."""


def capcse_argv() -> list[str]:
    return [sys.executable, "-m", "capcse"]


@dataclass
class Context:
    out: Path
    data_dir: str | None
    threads: int
    models_from: Path | None = None  # --models-from: train rows evaluate the model their run has there

    def values(self, run: Run | None = None) -> dict[str, str | None]:
        return {"data": self.data_dir, "out": str(self.out), "work": str(self.out / "work"),
                "run": str(run.folder) if run else None,
                "seed": None if run is None or run.seed is None else str(run.seed),
                "threads": str(self.threads), "repo": str(REPO_ROOT), "python": sys.executable}


def _sub(text: str, ctx: Context, run: Run | None, folders: dict[str, Path]) -> str:
    return substitute(str(text), ctx.values(run), folders)


def dependency_folders(run: Run, runs: list[Run]) -> dict[str, Path]:
    """``${run:ROW}`` -> the folder of ROW's run at this run's seed (or ROW's only run, if unseeded)."""
    by_id = {r.id: r for r in runs}
    out = {}
    for dep in run.depends:
        r = by_id[dep]
        out[r.row.name] = r.folder
    return out


def _program(words: list[str]) -> list[str]:
    return capcse_argv() + words[1:] if words and words[0] == "capcse" else words


def eval_argv(model: str, ev: dict, run: Run, ctx: Context, folders: dict[str, Path]) -> list[str]:
    argv = capcse_argv() + ["eval", model, "--tasks", str(ev.get("tasks", "sts")), "--mode",
                            str(ev.get("mode", "test")), "--output", str(run.folder / "eval"), "--no-plots"]
    for key in ("pooler", "variant", "batch_size", "dtype"):
        if ev.get(key) is not None:
            argv += [f"--{key.replace('_', '-')}", _sub(ev[key], ctx, run, folders)]
    if ctx.data_dir:
        argv += ["--data-dir", ctx.data_dir]
    return argv


def train_overrides(run: Run, ctx: Context, folders: dict[str, Path]) -> list[str]:
    def deep(v):
        if isinstance(v, str):
            return _sub(v, ctx, run, folders)
        if isinstance(v, list):
            return [deep(x) for x in v]
        return {k: deep(x) for k, x in v.items()} if isinstance(v, dict) else v

    sets = {k: deep(v) for k, v in run.row.overrides.items()}
    sets = {k: (json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else v) for k, v in sets.items()}
    if run.seed is not None:
        sets["train.seed"] = run.seed
    sets.setdefault("train.torch_threads", ctx.threads)
    sets["eval.final"] = "[none]"  # the run's evaluation is its own `capcse eval` step
    return [f"{k}={v}" for k, v in sets.items()]


#: recipe keys that do not change what a run trains (bookkeeping, threads, paths, evaluation)
REUSE_IGNORED = ("train.output_dir", "train.torch_threads", "train.report_to", "train.logging_steps",
                 "train.dataloader_num_workers", "train.progress", "train.save_steps", "train.save_total_limit",
                 "data.data_dir", "multimodal.feature_cache", "eval.*")


def _trained_keys(recipe) -> dict:
    from capcse.train.recipe import is_resume_safe

    flat = {}
    for section, values in recipe.to_dict().items():
        for key, value in (values.items() if isinstance(values, dict) else [("", values)]):
            name = f"{section}.{key}" if key else section
            if not is_resume_safe(name, REUSE_IGNORED):
                flat[name] = value
    return flat


def reused_model(run: Run, ctx: Context, runs: list[Run]) -> Path:
    """With ``--models-from DIR``: the model this train run already has in DIR (``DIR/runs/<run>/train/model``),
    after checking that it was trained by the very recipe this run would train (:data:`REUSE_IGNORED` aside)."""
    from capcse.train.recipe import load_recipe

    assert ctx.models_from is not None
    train = ctx.models_from / "runs" / run.id / "train"
    model, saved = train / "model", train / "recipe.yaml"
    if not (model / "config.json").is_file() or not saved.is_file():
        raise ExperimentError(f"run {run.id}: --models-from {ctx.models_from}: no trained model at {model}")
    folders = dependency_folders(run, runs)
    mine = _trained_keys(load_recipe(_sub(run.row.recipe, ctx, run, folders), train_overrides(run, ctx, folders)))
    theirs = _trained_keys(load_recipe(saved))
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        raise ExperimentError(f"run {run.id}: the model at {model} was trained with a different recipe ("
                              + "; ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in differ[:3])
                              + ")")
    return model


def run_commands(run: Run, ctx: Context, runs: list[Run]) -> list[list[str]]:
    """The argv lists of one run, in order."""
    folders = dependency_folders(run, runs)
    row = run.row
    if row.kind == "train" and ctx.models_from is not None:
        return [eval_argv(str(reused_model(run, ctx, runs)), row.eval, run, ctx, folders)]
    if row.kind == "train":
        argv = capcse_argv() + ["train", _sub(row.recipe, ctx, run, folders), "--output", str(run.folder / "train")]
        if ctx.data_dir:
            argv += ["--data-dir", ctx.data_dir]
        for text in train_overrides(run, ctx, folders):
            argv += ["--set", text]
        return [argv, eval_argv(str(run.folder / "train" / "model"), row.eval, run, ctx, folders)]
    if row.kind == "eval":
        return [eval_argv(_sub(row.model, ctx, run, folders), row.eval, run, ctx, folders)]
    return [_program([_sub(w, ctx, run, folders) for w in cmd]) for cmd in row.commands]


def subprocess_env(threads: int, data_dir: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[key] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    if data_dir:
        env["CAPCSE_DATA"] = data_dir
    src = str(Path(__file__).resolve().parents[2])  # the capcse being run, also in the children
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def log_tail(path: Path, n: int = LOG_TAIL) -> str:
    if not path.is_file():
        return "(no log)"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join("    " + line for line in lines[-n:])


def _short(argv: list[str]) -> str:
    words = ["capcse"] + argv[3:] if argv[:3] == capcse_argv() else argv
    text = shlex.join(words)
    return text if len(text) <= 120 else text[:117] + "..."


def metrics_path(run: Run) -> Path:
    return run.folder / run.row.metrics_file


def is_finished(run: Run) -> bool:
    return (run.folder / MARKER).is_file()


def execute_run(run: Run, ctx: Context, runs: list[Run]) -> dict:
    """Run one run's commands (its folder cleared first); write its marker; raise ExperimentError on failure."""
    from capcse.io import atomic_write_json

    if run.folder.exists():
        shutil.rmtree(run.folder)  # an unfinished earlier attempt: start again
    run.folder.mkdir(parents=True)
    log = run.folder / "log.txt"
    env = subprocess_env(ctx.threads, ctx.data_dir)
    commands = run_commands(run, ctx, runs)
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        for argv in commands:
            fh.write("$ " + shlex.join(argv) + "\n")
            fh.flush()
            proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
            if proc.returncode:
                fh.flush()
                raise ExperimentError(f"run {run.id} failed: `{_short(argv)}` exited with "
                                      f"{proc.returncode}; log: {log}; last lines:\n{log_tail(log)}")
    if run.row.kind == "train" and not run.row.keep_checkpoints:
        for ckpt in (run.folder / "train").glob("checkpoint-*"):  # optimizer states: not needed afterwards
            shutil.rmtree(ckpt)
    if not metrics_path(run).is_file():
        raise ExperimentError(f"run {run.id}: its commands succeeded but its metrics file {metrics_path(run)} "
                              f"is missing; log: {log}")
    record = {"run": run.id, "row": run.row.name, "seed": run.seed, "seconds": round(time.perf_counter() - t0, 1),
              "metrics_file": run.row.metrics_file, "commands": [shlex.join(a) for a in commands]}
    atomic_write_json(run.folder / MARKER, record)
    return record


def run_prepare(spec: Spec, ctx: Context, log: Callable[[str], None]) -> None:
    """The spec's prepare steps, in order; a step whose ``creates`` exists is skipped."""
    from capcse.io import atomic_write_text

    work = ctx.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(ctx.threads, ctx.data_dir)
    for step in spec.prepare:
        target = Path(_sub(step.creates, ctx, None, {}))
        if target.exists():
            log(f"prepare {step.name}: {target} exists, skipped")
            continue
        if step.concat is not None:
            parts = [Path(_sub(p, ctx, None, {})) for p in step.concat]
            texts = [p.read_text(encoding="utf-8").splitlines(keepends=True) for p in parts]
            texts = [t if not t or t[-1].endswith("\n") else t[:-1] + [t[-1] + "\n"] for t in texts]
            skip = 1 if target.suffix.lower() in (".csv", ".tsv") else 0  # tables: one header, checked equal
            header = texts[0][0] if skip and texts and texts[0] else ""
            for p, t in zip(parts, texts):
                if skip and (not t or t[0] != header):
                    raise ExperimentError(f"prepare {step.name}: {p} does not start with the header of {parts[0]}")
            atomic_write_text(target, header + "".join(line for t in texts for line in t[skip:]))
            log(f"prepare {step.name}: {target} ({sum(len(t) - skip for t in texts)} lines from {len(parts)} files)")
            continue
        argv = _program([_sub(w, ctx, None, {}) for w in step.command])
        plog = work / f"prepare-{step.name}.log"
        log(f"prepare {step.name}: {shlex.join(argv)}")
        with open(plog, "w", encoding="utf-8") as fh:
            proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        if proc.returncode or not target.exists():
            raise ExperimentError(f"prepare step {step.name} failed (exit {proc.returncode}"
                                  f"{'' if proc.returncode else f', {target} not created'}); log: {plog}; "
                                  f"last lines:\n{log_tail(plog)}")


def run_experiment(spec: Spec, ctx: Context, *, jobs: int = 1, log: Callable[[str], None] = print) -> list[Run]:
    """Run every unfinished run of ``spec`` (``jobs`` at a time, dependencies first). Returns all runs."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    runs = plan_runs(spec, ctx.out)
    todo = [r for r in runs if not is_finished(r)]
    log(f"{spec.name}: {len(runs)} run(s), {len(runs) - len(todo)} finished earlier, {len(todo)} to run "
        f"({jobs} at a time, {ctx.threads} thread(s) each)")
    if not todo:
        return runs
    run_prepare(spec, ctx, log)
    done = {r.id for r in runs if is_finished(r)}
    failures: list[ExperimentError] = []
    lock = threading.Lock()

    def job(run: Run) -> Run:
        log(f"start {run.id}")
        rec = execute_run(run, ctx, runs)
        with lock:
            log(f"done  {run.id} ({rec['seconds']:.0f} s)")
        return run

    pending = list(todo)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        going = {}
        while pending or going:
            if not failures:
                ready = [r for r in pending if all(d in done for d in r.depends)]
                for run in ready[: jobs - len(going)]:
                    pending.remove(run)
                    going[pool.submit(job, run)] = run
            if not going:
                break
            finished, _ = wait(going, return_when=FIRST_COMPLETED)
            for fut in finished:
                run = going.pop(fut)
                try:
                    fut.result()
                    done.add(run.id)
                except ExperimentError as exc:
                    failures.append(exc)
                    log(f"FAILED {run.id}")
    if failures:
        left = len([r for r in runs if not is_finished(r)])
        raise ExperimentError("\n".join(str(f) for f in failures)
                              + f"\n{left} run(s) unfinished; finished runs are kept: run the same command again "
                                "to continue")
    return runs
