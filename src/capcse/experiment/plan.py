"""``capcse experiment SPEC --dry-run``: every run's commands, and whether what they name can be found here.

Each train run's recipe is resolved with its overrides (an unknown recipe or a bad ``--set`` value is an
error of the spec); its model, training data, image-caption pairs, image folder and teachers, and each eval
run's model, are looked up without loading anything: a local folder, a packaged alias, a data set of the
registry found in the data folder, a Hugging Face id already in the local cache, or made by an earlier run or
prepare step of the experiment. What is not found is reported as *missing* (with why: offline, an alias whose
weights are not committed yet, a data set not in the data folder) — the dry run does not fail on it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from capcse.errors import CapcseError
from capcse.experiment.runner import Context, _sub, capcse_argv, dependency_folders, run_commands, train_overrides
from capcse.experiment.spec import Run, Spec


@dataclass
class Check:
    what: str
    name: str
    status: str      # ok | made | missing | error
    detail: str = ""

    def line(self) -> str:
        tag = {"ok": "ok", "made": "made here", "missing": "MISSING", "error": "ERROR"}[self.status]
        return f"{self.what} {self.name}: {tag}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.status == "missing"]

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.status == "error"]


def _produced(name: str, ctx: Context) -> bool:
    try:
        return Path(name).resolve().is_relative_to(ctx.out.resolve())
    except (OSError, ValueError):
        return False


def check_model(what: str, name: str, ctx: Context) -> Check:
    from capcse.models.registry import ALIASES, resolve_model

    if _produced(name, ctx):
        return Check(what, name, "made", "by a run or prepare step of this experiment")
    try:
        path = resolve_model(name)
    except CapcseError as exc:
        return Check(what, name, "missing", str(exc))
    if Path(path).exists():
        return Check(what, name, "ok", path if path != name else "")
    if name in ALIASES or not name.startswith((".", "/", "~")):  # a hub id (bert-base-uncased has no owner)
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(path, "config.json")
        except Exception:  # a malformed id: reported below as not found
            cached = None
        if isinstance(cached, str):
            return Check(what, name, "ok", f"Hugging Face cache: {Path(cached).parent}")
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        return Check(what, name, "missing" if offline else "ok",
                     f"hub-only model {path!r}: not in the local cache" + (" and HF_HUB_OFFLINE is set" if offline
                                                                             else "; downloaded on first use"))
    return Check(what, name, "missing", "no such local folder")


def check_data(what: str, name: str, ctx: Context) -> Check:
    from capcse.data.registry import REGISTRY
    from capcse.data.resolve import find_local, is_offline

    if name.startswith("hf:"):
        return Check(what, name, "ok", "a Hugging Face data set, loaded by `datasets`")
    if _produced(name, ctx):
        return Check(what, name, "made", "by a prepare step or run of this experiment")
    if Path(name).expanduser().exists():
        return Check(what, name, "ok")
    if name.lower() in REGISTRY:
        found = find_local(name, data_dir=ctx.data_dir)
        if found is not None:
            return Check(what, name, "ok", str(found.path))
        return Check(what, name, "missing" if is_offline() else "ok",
                     "registry data set not in the data folder" + ("; offline" if is_offline()
                                                                  else "; downloaded on first use"))
    return Check(what, name, "missing", "no such file, and not a data set of the registry (capcse data list)")


def _train_checks(run: Run, ctx: Context, runs: list[Run]) -> list[Check]:
    from capcse.experiment.runner import reused_model
    from capcse.train.recipe import load_recipe

    if ctx.models_from is not None:
        try:
            return [Check("trained model", str(reused_model(run, ctx, runs)), "ok", "evaluated, not trained again")]
        except CapcseError as exc:
            return [Check("trained model", str(ctx.models_from), "missing", str(exc))]
    folders = dependency_folders(run, runs)
    try:
        recipe = load_recipe(_sub(run.row.recipe, ctx, run, folders), train_overrides(run, ctx, folders))
    except CapcseError as exc:
        return [Check("recipe", run.row.recipe, "error", str(exc))]
    checks = [Check("recipe", run.row.recipe, "ok", f"{recipe.train.max_steps} steps" if recipe.train.max_steps > 0
                    else f"{recipe.train.epochs:g} epoch(s)"),
              check_model("model", recipe.model.name, ctx), check_data("data.train", recipe.data.train, ctx)]
    mm = recipe.multimodal or {}
    if mm.get("pairs"):
        checks.append(check_data("multimodal.pairs", str(mm["pairs"]), ctx))
        root = mm.get("image_root")
        pairs_folder = Path(str(mm["pairs"])).expanduser().is_dir()
        if root:
            checks.append(check_data("multimodal.image_root", str(root), ctx))
        elif not pairs_folder:
            checks.append(Check("multimodal.image_root", "null", "missing",
                                "the recipe needs the image folder of its caption set (--set multimodal.image_root=...)"))
        vision = str(mm.get("vision", ""))
        if "/" in vision:
            checks.append(check_model("multimodal.vision", vision, ctx))
    for teacher in mm.get("teachers") or []:
        checks.append(check_model("multimodal.teacher", str(teacher), ctx))
    return checks


def describe(spec: Spec, ctx: Context, runs: list[Run]) -> Plan:
    """The plan of every run (commands + resolution checks)."""
    from capcse.experiment.runner import is_finished

    plan = Plan()
    n_rows = len(spec.rows)
    plan.lines.append(f"plan: {spec.name}" + (f" (profile {spec.profile})" if spec.profile else "")
                      + f" -- {n_rows} row(s) x seeds {spec.seeds} = {len(runs)} run(s); output {ctx.out}; "
                      f"data {ctx.data_dir or '(none given)'}")
    py = shlex.join(capcse_argv())
    for step in spec.prepare:
        body = (shlex.join(step.command) if step.command else "concat " + " ".join(step.concat))
        plan.lines.append(f"  prepare {step.name}: {_sub(body, ctx, None, {})}")
    for run in runs:
        state = " [finished]" if is_finished(run) else ""
        plan.lines.append(f"  run {run.id} [{run.row.kind}]{state}"
                          + (f" after {', '.join(run.depends)}" if run.depends else ""))
        try:
            commands = run_commands(run, ctx, runs)
        except CapcseError as exc:
            chk = Check("commands", run.id, "error", str(exc))
            plan.checks.append(chk)
            plan.lines.append("    " + chk.line())
            continue
        for argv in commands:
            plan.lines.append("    $ " + shlex.join(argv).replace(py, "capcse", 1))
        if run.row.kind == "train":
            checks = _train_checks(run, ctx, runs)
        elif run.row.kind == "eval":
            checks = [check_model("model", commands[0][len(capcse_argv()) + 1], ctx)]
        else:
            checks = []
        for chk in checks:
            plan.checks.append(chk)
            plan.lines.append("    " + chk.line())
    uniq_missing = sorted({(c.what, c.name, c.detail) for c in plan.missing})
    plan.lines.append(f"{len(runs)} run(s); {len(uniq_missing)} thing(s) missing here"
                      + ("" if not plan.errors else f"; {len(plan.errors)} ERROR(s) in the spec"))
    for what, name, detail in uniq_missing:
        plan.lines.append(f"  missing: {what} {name}: {detail}")
    return plan
