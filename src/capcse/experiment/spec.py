"""Experiment specs: a YAML file (``experiments/<name>.yaml``) = rows x seeds, expanded into runs.

A spec names its rows (the conditions of one table) and the seeds every seeded row is run with::

    name: simcse-bert-base              # default: the file name
    description: ...
    reference: ...                      # where the published numbers come from
    seeds: [42, 43, 44]
    metrics: sts                        # table extractor for every row: sts | korsts | transfer | linkage
    eval: {tasks: sts, mode: test}      # `capcse eval` options of train and eval rows
    set: {train.precision: bf16}        # `capcse train --set` overrides of every train row
    prepare:                            # run once, in order, before any run; skipped when `creates` exists
      - {name: snli-dev, creates: "${work}/snli_dev.csv",
         command: [capcse, triplets, --nli, "${data}/downstream/SNLI", --split, dev, --out, "${work}/snli_dev.csv"]}
      - {name: snli, creates: "${work}/snli.csv", concat: ["${work}/snli_dev.csv", "${work}/snli_test.csv"]}
    rows:
      - {name: raw-cls, kind: eval, model: bert-base-uncased, pooler: cls_before_pooler}
      - {name: unsup, kind: train, recipe: simcse-unsup-bert-base, set: {...}, eval: {pooler: cls_before_pooler},
         published: {STS12: 68.40, ..., Avg.: 76.25}}
      - {name: linked, kind: command, metrics: linkage, metrics_file: results.json,
         commands: [[capcse, link, train, ...], [capcse, link, eval, ...]]}
    profiles:
      cpu: {seeds: [...], set: {...}, rows: [...]}   # selected with --profile cpu

A profile's ``set`` and ``eval`` are merged into the spec's; every other key it gives replaces the spec's
(``rows``, ``prepare``, ``seeds``, ``metrics`` ...). Variables in every string: ``${data}`` (the data folder),
``${out}`` (the experiment folder), ``${work}`` (``${out}/work``, the prepare steps' products), ``${run}`` (this
run's folder), ``${run:ROW}`` (the folder of ROW's run with the same seed: a dependency, run first),
``${seed}``, ``${threads}``, ``${repo}`` (the capcse checkout), ``${python}`` (this Python). A command's first word ``capcse`` is this
Python's ``python -m capcse``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from capcse.errors import ConfigError, DataFormatError

REPO_ROOT = Path(__file__).resolve().parents[3]
KINDS = ("train", "eval", "command")
METRICS = ("sts", "korsts", "transfer", "linkage")
SPEC_KEYS = {"name", "description", "reference", "seeds", "metrics", "eval", "set", "prepare", "rows", "profiles",
             "notes"}
ROW_KEYS = {
    "train": {"name", "kind", "recipe", "set", "eval", "published", "published_source", "seeded", "note",
              "keep_checkpoints", "metrics"},
    "eval": {"name", "kind", "model", "pooler", "eval", "published", "published_source", "seeded", "note", "metrics"},
    "command": {"name", "kind", "commands", "metrics_file", "metrics", "published", "published_source", "seeded",
                "note"},
}
EVAL_KEYS = {"tasks", "mode", "pooler", "variant", "batch_size", "dtype"}
_VAR = re.compile(r"\$\{([a-z]+)(?::([A-Za-z0-9_.\-]+))?\}")
VARIABLES = ("data", "out", "work", "run", "seed", "threads", "repo", "python")


def experiments_dir() -> Path:
    """``$CAPCSE_EXPERIMENTS``, else the repository's ``experiments/`` folder."""
    env = os.environ.get("CAPCSE_EXPERIMENTS")
    return Path(env) if env else REPO_ROOT / "experiments"


def default_data_dir(given: str | os.PathLike | None = None) -> str | None:
    """``given``, else ``$CAPCSE_DATA``, else ``../shared/data`` beside the checkout when it exists."""
    if given:
        return str(Path(given).expanduser().resolve())
    env = os.environ.get("CAPCSE_DATA")
    if env:
        return env
    cand = REPO_ROOT.parent / "shared" / "data"
    return str(cand) if cand.is_dir() else None


def find_spec(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    for cand in (experiments_dir() / f"{name_or_path}.yaml", experiments_dir() / str(name_or_path)):
        if cand.is_file():
            return cand
    known = sorted(p.stem for p in experiments_dir().glob("*.yaml")) if experiments_dir().is_dir() else []
    raise ConfigError(f"no experiment spec {str(name_or_path)!r}: not a file, and not in {experiments_dir()} "
                      f"(known: {', '.join(known) or 'none'})")


@dataclass
class Row:
    name: str
    kind: str
    seeded: bool
    metrics: str
    recipe: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)   # train: --set key -> value
    eval: dict[str, Any] = field(default_factory=dict)        # train / eval: capcse eval options
    model: str | None = None                                   # eval rows
    commands: list[list[str]] = field(default_factory=list)   # command rows
    metrics_file: str = "eval/results.json"                   # relative to the run folder
    published: dict[str, float] = field(default_factory=dict)
    published_source: str = ""
    note: str = ""
    keep_checkpoints: bool = False


@dataclass
class Prepare:
    name: str
    creates: str
    command: list[str] | None = None
    concat: list[str] | None = None


@dataclass
class Spec:
    name: str
    path: Path
    profile: str | None
    seeds: list[int]
    rows: list[Row]
    prepare: list[Prepare]
    description: str = ""
    reference: str = ""
    notes: str = ""

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise ConfigError(f"{self.path}: no row {name!r} (rows: {', '.join(r.name for r in self.rows)})")


@dataclass
class Run:
    """One subprocess job: a row at one seed (``seed`` None: an unseeded row, run once)."""
    row: Row
    seed: int | None
    folder: Path
    depends: list[str] = field(default_factory=list)   # run ids that must finish first

    @property
    def id(self) -> str:
        return run_id(self.row.name, self.seed)


def run_id(row: str, seed: int | None) -> str:
    return row if seed is None else f"{row}-s{seed}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFormatError(path, mark.line + 1 if mark is not None else None, f"invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an experiment spec is a mapping (name, seeds, rows, ...)")
    return data


def _apply_profile(data: dict[str, Any], profile: str | None, path: Path) -> dict[str, Any]:
    profiles = data.pop("profiles", None) or {}
    if profile is None:
        return data
    if profile not in profiles:
        raise ConfigError(f"{path}: no profile {profile!r} (profiles: {', '.join(profiles) or 'none'})")
    prof = profiles[profile] or {}
    if not isinstance(prof, dict):
        raise ConfigError(f"{path}: profiles.{profile} must be a mapping")
    unknown = sorted(set(prof) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{path}: profiles.{profile}: unknown key(s) {', '.join(unknown)}")
    out = copy.deepcopy(data)
    for key, value in prof.items():
        if key in ("set", "eval") and isinstance(value, dict):
            out[key] = {**(out.get(key) or {}), **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        import shlex

        return shlex.split(value)
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ConfigError(f"{where}: a command is a list of words (or one string)")
    return [str(v) for v in value]


def _row(raw: Any, i: int, defaults: dict[str, Any], path: Path) -> Row:
    where = f"{path}: rows[{i}]"
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{where}: a row is a mapping with a name")
    name = str(raw["name"])
    where = f"{path}: row {name!r}"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise ConfigError(f"{where}: a row name is letters, digits, '.', '_' and '-' (it names a folder)")
    kind = raw.get("kind", "train")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(raw) - ROW_KEYS[kind])
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) for a {kind} row: {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(ROW_KEYS[kind]))}")
    metrics = raw.get("metrics", defaults["metrics"])
    if metrics not in METRICS:
        raise ConfigError(f"{where}: metrics must be one of {', '.join(METRICS)}, got {metrics!r}")
    ev = {**defaults["eval"], **(raw.get("eval") or {})}
    if kind == "eval" and raw.get("pooler") is not None:
        ev["pooler"] = raw["pooler"]
    bad = sorted(set(ev) - EVAL_KEYS)
    if bad:
        raise ConfigError(f"{where}: unknown eval option(s) {', '.join(bad)}; known: {', '.join(sorted(EVAL_KEYS))}")
    published = raw.get("published") or {}
    if not isinstance(published, dict) or not all(isinstance(v, (int, float)) for v in published.values()):
        raise ConfigError(f"{where}: published is a mapping task -> number")
    row = Row(name=name, kind=kind, seeded=bool(raw.get("seeded", kind != "eval")), metrics=metrics, eval=ev,
              published={str(k): float(v) for k, v in published.items()},
              published_source=str(raw.get("published_source", "")), note=str(raw.get("note", "")),
              keep_checkpoints=bool(raw.get("keep_checkpoints", False)))
    if kind == "train":
        if not raw.get("recipe"):
            raise ConfigError(f"{where}: a train row needs a recipe")
        row.recipe = str(raw["recipe"])
        sets = raw.get("set") or {}
        if not isinstance(sets, dict):
            raise ConfigError(f"{where}: set is a mapping key -> value")
        row.overrides = {**defaults["set"], **sets}
    elif kind == "eval":
        if not raw.get("model"):
            raise ConfigError(f"{where}: an eval row needs a model")
        row.model = str(raw["model"])
    else:
        cmds = raw.get("commands")
        if not isinstance(cmds, list) or not cmds:
            raise ConfigError(f"{where}: a command row needs commands (a list of commands)")
        row.commands = [_str_list(c, f"{where}: commands[{j}]") for j, c in enumerate(cmds)]
        if not raw.get("metrics_file"):
            raise ConfigError(f"{where}: a command row needs metrics_file (relative to its run folder)")
        row.metrics_file = str(raw["metrics_file"])
    return row


def _prepare(raw: Any, i: int, path: Path) -> Prepare:
    where = f"{path}: prepare[{i}]"
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("creates"):
        raise ConfigError(f"{where}: a prepare step is a mapping with name, creates and command or concat")
    unknown = sorted(set(raw) - {"name", "creates", "command", "concat"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if ("command" in raw) == ("concat" in raw):
        raise ConfigError(f"{where}: give exactly one of command, concat")
    step = Prepare(str(raw["name"]), str(raw["creates"]))
    if "command" in raw:
        step.command = _str_list(raw["command"], where)
    else:
        step.concat = _str_list(raw["concat"], where)
    return step


def load_spec(name_or_path: str | os.PathLike, profile: str | None = None) -> Spec:
    """Read, profile and validate a spec (a ConfigError naming the file and the row on any bad value)."""
    path = find_spec(name_or_path)
    data = _apply_profile(_read_yaml(path), profile, path)
    unknown = sorted(set(data) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(SPEC_KEYS))}")
    seeds = data.get("seeds", [42])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in seeds):
        raise ConfigError(f"{path}: seeds is a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds repeat: {seeds}")
    defaults = {"metrics": data.get("metrics", "sts"), "eval": dict(data.get("eval") or {}),
                "set": dict(data.get("set") or {})}
    rows_raw = data.get("rows")
    if not isinstance(rows_raw, list) or not rows_raw:
        raise ConfigError(f"{path}: rows is a non-empty list")
    rows = [_row(r, i, defaults, path) for i, r in enumerate(rows_raw)]
    names = [r.name for r in rows]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: row names repeat: {', '.join(dup)}")
    prepare = [_prepare(p, i, path) for i, p in enumerate(data.get("prepare") or [])]
    spec = Spec(name=str(data.get("name", path.stem)), path=path, profile=profile, seeds=list(seeds), rows=rows,
                prepare=prepare, description=str(data.get("description", "")),
                reference=str(data.get("reference", "")), notes=str(data.get("notes", "")))
    for row in rows:  # every ${...} names a known variable, every ${run:ROW} a row
        for text in _row_texts(row):
            for var, arg in _VAR.findall(text):
                if var not in VARIABLES:
                    raise ConfigError(f"{path}: row {row.name!r}: unknown variable ${{{var}}} in {text!r}; "
                                      f"known: {', '.join(VARIABLES)}")
                if var == "run" and arg:
                    dep = spec.row(arg)
                    if dep.name == row.name:
                        raise ConfigError(f"{path}: row {row.name!r} depends on itself")
                    if dep.seeded and not row.seeded:
                        raise ConfigError(f"{path}: row {row.name!r} is unseeded but uses the seeded row {arg!r}")
    return spec


def _row_texts(row: Row) -> list[str]:
    texts = [row.recipe or "", row.model or ""] + [str(v) for v in row.overrides.values()]
    texts += [str(v) for v in row.eval.values()] + [w for c in row.commands for w in c]
    return texts


def select(spec: Spec, only: list[str] | None = None, seeds: list[int] | None = None) -> Spec:
    """The spec restricted to rows ``only`` (plus the rows they depend on) and to ``seeds``."""
    out = copy.copy(spec)
    if seeds:
        out.seeds = list(seeds)
    if only:
        keep = set()
        todo = list(only)
        while todo:
            name = todo.pop()
            if name in keep:
                continue
            row = spec.row(name)
            keep.add(name)
            todo += [arg for t in _row_texts(row) for var, arg in _VAR.findall(t) if var == "run" and arg]
        out.rows = [r for r in spec.rows if r.name in keep]
    return out


def with_overrides(spec: Spec, overrides: list[str]) -> Spec:
    """``--set KEY=VALUE`` of the command line added to every train row (after the spec's own)."""
    from capcse.train.recipe import parse_override

    if not overrides:
        return spec
    parsed = {".".join(parse_override(text)[0]): parse_override(text)[1] for text in overrides}
    out = copy.copy(spec)
    out.rows = [dataclasses.replace(r, overrides={**r.overrides, **parsed}) if r.kind == "train" else r for r in spec.rows]
    return out


def substitute(text: str, values: dict[str, str], folders: dict[str, Path] | None = None) -> str:
    """Replace ``${var}`` and ``${run:ROW}`` in ``text``."""
    def one(m: re.Match) -> str:
        var, arg = m.group(1), m.group(2)
        if var == "run" and arg:
            return str(folders[arg])
        if values.get(var) is None:
            raise ConfigError(f"${{{var}}} is used but not set" + (" (give --data-dir or set CAPCSE_DATA)"
                                                                    if var == "data" else ""))
        return str(values[var])

    return _VAR.sub(one, text)


def plan_runs(spec: Spec, out: Path) -> list[Run]:
    """Every run of ``spec``, dependencies first (rows in spec order, then seeds)."""
    runs: list[Run] = []
    for row in spec.rows:
        for seed in (spec.seeds if row.seeded else [None]):
            deps = sorted({run_id(arg, seed if spec.row(arg).seeded else None)
                           for t in _row_texts(row) for var, arg in _VAR.findall(t) if var == "run" and arg})
            runs.append(Run(row, seed, out / "runs" / run_id(row.name, seed), deps))
    order: list[Run] = []
    done: set[str] = set()
    pending = list(runs)
    while pending:
        ready = [r for r in pending if all(d in done for d in r.depends)]
        if not ready:
            raise ConfigError(f"{spec.path}: rows depend on each other in a cycle: "
                              f"{', '.join(r.id for r in pending)}")
        for r in ready:
            order.append(r)
            done.add(r.id)
        pending = [r for r in pending if r.id not in done]
    return order
