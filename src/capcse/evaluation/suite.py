"""The whole evaluation of one model: task selection, STS + KorSTS + alignment/uniformity + transfer.

``run_evaluation`` is what ``capcse eval`` calls; its result turns into the JSON payload that every
report (console, markdown, plots, HTML) is rendered from.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from capcse.errors import ConfigError
from capcse.evaluation.alignment import alignment_from_results
from capcse.evaluation.encoding import model_name
from capcse.evaluation.sts import (DEV_STS_TASKS, KORSTS_TASKS, STS_TASKS, STSResults, evaluate_sts,
                                   load_sts_tasks)
from capcse.evaluation.transfer import TRANSFER_TASKS, ProbeConfig, TransferResults, evaluate_transfer

SUITES: dict[str, tuple[str, ...]] = {
    "sts": STS_TASKS,
    "transfer": TRANSFER_TASKS,
    "korsts": KORSTS_TASKS,
    "all": STS_TASKS + TRANSFER_TASKS + KORSTS_TASKS,
}
ALL_TASKS = STS_TASKS + KORSTS_TASKS + TRANSFER_TASKS
STS_FORMAT_TASKS = STS_TASKS + KORSTS_TASKS


def resolve_tasks(spec: str | Sequence[str], mode: str = "test") -> list[str]:
    """Expand ``"sts"``, ``"transfer"``, ``"korsts"``, ``"all"`` or task ids (comma-separated or a list)
    into an ordered list of task ids. In dev mode the STS suite is STS-B dev + SICK-R dev (SimCSE's)."""
    if mode not in ("test", "dev"):
        raise ConfigError(f"mode must be 'test' or 'dev', got {mode!r}")
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: list[str] = []
    for raw in parts:
        name = raw.strip().lower().replace("-", "")
        if not name:
            continue
        if name in SUITES:
            expanded = SUITES[name]
            if mode == "dev":
                expanded = tuple(t for t in expanded if t not in STS_TASKS or t in DEV_STS_TASKS)
        elif name in ALL_TASKS:
            if mode == "dev" and name in STS_TASKS and name not in DEV_STS_TASKS:
                raise ConfigError(f"{name} is a test set only (no dev split); use mode 'test' "
                                  f"(mode 'dev' evaluates {', '.join(DEV_STS_TASKS)})")
            expanded = (name,)
        else:
            raise ConfigError(f"unknown task {raw.strip()!r}; choose suites {', '.join(SUITES)} "
                              f"or tasks {', '.join(ALL_TASKS)}")
        chosen.extend(t for t in expanded if t not in chosen)
    if not chosen:
        raise ConfigError("no task selected")
    return [t for t in ALL_TASKS if t in chosen]  # canonical order: the SimCSE table, KorSTS, transfer


@dataclass
class EvaluationResult:
    model: str
    mode: str
    variant: str
    tasks: list[str]
    sts: STSResults | None = None
    transfer: TransferResults | None = None
    alignment: dict[str, Any] | None = None
    timing: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def sts_avg(self) -> float | None:
        """Average cosine Spearman over the SimCSE STS columns present (KorSTS excluded)."""
        if self.sts is None:
            return None
        vals = [r.spearman for t, r in self.sts.tasks.items() if t in STS_TASKS]
        return float(sum(vals) / len(vals)) if vals else None

    def transfer_avg(self) -> float | None:
        """Average transfer accuracy: test accuracy in test mode, dev accuracy in dev mode (SimCSE)."""
        if self.transfer is None:
            return None
        return self.transfer.avg if self.mode == "test" else self.transfer.dev_avg

    def to_dict(self) -> dict[str, Any]:
        from capcse import __version__

        results: dict[str, Any] = {}
        if self.sts is not None:
            for r in self.sts.tasks.values():
                results[r.name] = r.to_dict()
        if self.transfer is not None:
            for r in self.transfer.tasks.values():
                results[r.name] = r.to_dict()
        averages = {k: v for k, v in (("sts", self.sts_avg()), ("transfer", self.transfer_avg())) if v is not None}
        payload: dict[str, Any] = {
            "model": self.model,
            "results": results,
            "avg": averages.get("sts", averages.get("transfer")),
            "averages": averages,
            "mode": self.mode,
            "variant": self.variant,
            "tasks": list(self.tasks),
        }
        if self.alignment is not None:
            payload["alignment_uniformity"] = dict(self.alignment)
        payload["timing"] = {k: round(float(v), 3) for k, v in self.timing.items()}
        payload["settings"] = dict(self.settings)
        payload["capcse_version"] = __version__
        payload["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return payload


def run_evaluation(model: Any, tasks: str | Sequence[str] = "sts", mode: str = "test", *, data_dir=None,
                   variant: str = "senteval", fast: bool = False, batch_size: int | None = None,
                   n_jobs: int | None = None, seed: int = 1111, name: str | None = None,
                   show_progress_bar: bool | None = None, datasets: Mapping[str, Any] | None = None,
                   log: Callable[[str], Any] | None = None) -> EvaluationResult:
    """Evaluate ``model`` (encoder object or function) on ``tasks`` and return everything measured.

    STS-format tasks (STS12-16, STS-B, SICK-R, KorSTS) share one deduplicated encoding call.
    Alignment/uniformity is measured whenever STS-B is evaluated, on the STS-B split of the run,
    reusing its embeddings. ``datasets`` supplies in-memory data for some tasks (an STS-format task
    maps to ``(split, {subset: data})``, a transfer task to a ``TransferData``-like object); the
    other tasks are loaded from ``data_dir``.
    """
    given = dict(datasets or {})
    if variant not in ("senteval", "raw"):
        raise ConfigError(f"variant must be 'senteval' or 'raw', got {variant!r}")
    say = log or (lambda _msg: None)
    task_list = resolve_tasks(tasks, mode)
    result = EvaluationResult(name or model_name(model), mode, variant, task_list)
    cfg = ProbeConfig.senteval(fast, seed=seed, n_jobs=n_jobs)
    # issue 13 §1: the length every sentence was truncated at (None: a bare function, unknown)
    result.settings = {"max_seq_length": getattr(model, "max_seq_length", None),
                       "batch_size": batch_size, "fast": fast, "seed": seed,
                       "probe": {"kfold": cfg.kfold, "inner_grid": list(cfg.inner_grid),
                                 "kfold_grid": list(cfg.kfold_grid), "max_iter": cfg.max_iter,
                                 "n_jobs": cfg.jobs}}
    t_all = time.perf_counter()

    sts_tasks = [t for t in task_list if t in STS_FORMAT_TASKS]
    if sts_tasks:
        t0 = time.perf_counter()
        missing = [t for t in sts_tasks if t not in given]
        loaded = load_sts_tasks(missing, mode, data_dir=data_dir, variant=variant) if missing else {}
        sts_data = {t: given[t] if t in given else loaded[t] for t in sts_tasks}
        result.timing["sts_load_seconds"] = time.perf_counter() - t0
        n = sum(len(d.sentences1) for _s, subs in sts_data.values() for d in subs.values())
        say(f"STS: {len(sts_tasks)} task(s), {n} pairs; encoding every unique sentence once")
        t0 = time.perf_counter()
        result.sts = evaluate_sts(model, mode=mode, variant=variant, batch_size=batch_size, datasets=sts_data,
                                  show_progress_bar=show_progress_bar)
        table = result.sts.embeddings
        result.timing["sts_seconds"] = time.perf_counter() - t0
        result.timing["sts_encode_seconds"] = table.seconds
        result.timing["sts_sentences"] = table.n_requested
        result.timing["sts_unique_sentences"] = len(table.texts)
        if "stsb" in sts_data:
            split, subsets = sts_data["stsb"]
            result.alignment = alignment_from_results(subsets, table, split)
    if any(t in TRANSFER_TASKS for t in task_list):
        t0 = time.perf_counter()
        tr_tasks = [t for t in task_list if t in TRANSFER_TASKS]
        tr_given = {t: given[t] for t in tr_tasks if t in given}
        result.transfer = evaluate_transfer(model, tr_tasks, data_dir=data_dir, config=cfg, batch_size=batch_size,
                                            datasets=tr_given or None,
                                            show_progress_bar=show_progress_bar, log=say)
        result.timing["transfer_seconds"] = time.perf_counter() - t0
        result.timing["transfer_encode_seconds"] = result.transfer.encode_seconds
    result.timing["total_seconds"] = time.perf_counter() - t_all
    return result
