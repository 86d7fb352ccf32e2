"""Training recipes: a YAML file (``configs/<name>.yaml``) naming model, data, pooler, loss, schedule
and evaluation. Every value can be overridden with ``--set section.key=value`` (the value is parsed
as YAML, so ``--set train.learning_rate=1e-5 --set eval.final=[sts,transfer]`` work)."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from capcse.errors import ConfigError


@dataclass
class ModelSection:
    name: str = "all-MiniLM-L6-v2"
    pooler: str = "cls"                 # capcse.models.POOLERS
    mlp_only_train: bool = False        # SimCSE: MLP over [CLS] in training only (unsup recipes)
    mlp_init: str = "fresh"             # fresh (SimCSE: a new MLP) | pretrained (keep the model's pooler)
    max_length: int = 32                # training batches only (SimCSE's --max_seq_length)
    inference_max_length: int | None = None  # saved model + dev eval; None: the start model's own length
    trust_remote_code: bool = False


@dataclass
class DataSection:
    train: str = "wiki1m"               # registry name, file path, or hf:<name>[:<config>][:<split>]
    format: str = "auto"                # auto | text | triplets | pairs | hf
    columns: list[str] | None = None    # which columns to use (hf / tabular inputs), in order
    limit: int | None = None            # use the first N examples
    data_dir: str | None = None


@dataclass
class LossSection:
    name: str = "simcse"
    temperature: float = 0.05
    hard_negative_weight: float = 0.0
    mlm_weight: float = 0.0             # SimCSE's auxiliary MLM (lambda = 0.1 in the paper's ablation)
    mlm_probability: float = 0.15
    mlm_head_init: str = "simcse"       # simcse | pretrained | fresh: where the MLM head starts (heads.py)
    mini_batch_size: int | None = None  # GradCache: embed/back-propagate in chunks of this many rows
    gather_across_devices: bool = True  # in-batch negatives from every process under DDP


@dataclass
class TrainSection:
    output_dir: str | None = None
    batch_size: int = 64
    learning_rate: float = 3e-5
    epochs: float = 1.0
    max_steps: int = -1
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8          # AdamW eps (transformers' default; MCSE / DALR use 1e-6)
    max_grad_norm: float = 1.0          # gradient clipping (the Trainer's and SimCSE's default); see DDP in docs
    optim: str = "adamw_torch_fused"    # the Trainer's optimizer name; AdamW as SimCSE, fused kernel
    seed: int = 42
    precision: str = "fp32"             # fp32 | bf16 | fp16 (autocast)
    gradient_accumulation_steps: int = 1
    group_by_length: bool = False       # batches of similar length (less padding)
    fast_dropout: str = "auto"          # auto (on CPU) | on | off: cheap dropout masks (capcse.models.dropout)
    logging_steps: int = 25
    save_steps: int | None = None       # default: eval.steps when evaluating, else 500
    save_total_limit: int | None = 2
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    dataloader_num_workers: int = 0
    device: str | None = None           # None: CUDA if present, else CPU
    torch_threads: int | None = None
    progress: str = "auto"              # auto (bars on a terminal only) | on | off


@dataclass
class EvalSection:
    during: str | None = "stsb-dev"     # stsb-dev | none
    steps: int = 125
    load_best: bool = True
    final: list[str] = field(default_factory=lambda: ["sts"])   # sts | transfer | korsts | all | none
    mode: str = "test"
    variant: str = "senteval"
    data_dir: str | None = None


@dataclass
class Recipe:
    name: str = "custom"
    description: str = ""
    reference: str = ""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    # issue 5: MCSE / DALR settings (pairs, vision, weights, teachers ...), read by capcse.train.multimodal
    multimodal: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir or f"outputs/{self.name}")


SECTIONS = {"model": ModelSection, "data": DataSection, "loss": LossSection, "train": TrainSection,
            "eval": EvalSection}
#: recipe class -> its sections (name -> dataclass); other recipe kinds (e.g. ``capcse pretrain``'s) register here
RECIPE_KINDS: dict[type, dict[str, type]] = {Recipe: SECTIONS}


def configs_dir() -> Path:
    """``$CAPCSE_CONFIGS``, else the repository's ``configs/`` folder."""
    env = os.environ.get("CAPCSE_CONFIGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "configs"


def find_recipe(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    for cand in (configs_dir() / f"{name_or_path}.yaml", configs_dir() / str(name_or_path)):
        if cand.is_file():
            return cand
    known = sorted(p.stem for p in configs_dir().glob("*.yaml")) if configs_dir().is_dir() else []
    raise ConfigError(f"no recipe {str(name_or_path)!r}: not a file, and not in {configs_dir()} "
                      f"(known: {', '.join(known) or 'none'})")


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set takes key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse {raw!r}: {exc}") from None
    return key.strip().split("."), value


def _build(cls, data: dict[str, Any], where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    kwargs = {}
    for key, value in data.items():
        ftype = known[key].type
        sub = RECIPE_KINDS.get(cls, {}).get(key)
        if sub is not None and isinstance(value, dict):
            kwargs[key] = _build(sub, value, f"{where}.{key}")
        elif sub is not None:
            raise ConfigError(f"{where}.{key} must be a mapping")
        else:
            kwargs[key] = _coerce(value, ftype, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(value: Any, ftype: Any, where: str) -> Any:
    text = str(ftype)
    if value is None:
        return None
    try:
        if (text.startswith("float") or text.startswith("int")) and isinstance(value, bool):
            raise ValueError  # YAML's true/false is not a number
        if text.startswith("float"):
            return float(value)
        if text.startswith("int"):
            if float(value) != int(float(value)):
                raise ValueError
            return int(value)
        if text.startswith("bool"):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if text.startswith("list") and isinstance(value, str):
            return [value]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {text}, got {value!r}") from None
    return value


# (section, key) -> (check, what it must be). Checked when a recipe is built, so that ``--set
# train.learning_rate=-1`` is a one-line ConfigError before any model or data is loaded.
def _positive(v) -> bool:
    return math.isfinite(v) and v > 0


def _non_negative(v) -> bool:
    return math.isfinite(v) and v >= 0


RANGES: dict[tuple[str, str], tuple[Any, str]] = {
    ("model", "max_length"): (lambda v: v >= 1, ">= 1"),
    ("model", "inference_max_length"): (lambda v: v >= 1, ">= 1 (or null: the start model's own length)"),
    ("data", "limit"): (lambda v: v >= 1, ">= 1 (or null: all)"),
    ("loss", "temperature"): (_positive, "> 0"),
    ("loss", "hard_negative_weight"): (_non_negative, ">= 0"),
    ("loss", "mlm_weight"): (_non_negative, ">= 0"),
    ("loss", "mlm_probability"): (lambda v: 0 < v < 1, "in (0, 1)"),
    ("loss", "mini_batch_size"): (lambda v: v >= 1, ">= 1 (or null: no GradCache)"),
    ("train", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("train", "learning_rate"): (_positive, "> 0"),
    ("train", "epochs"): (_positive, "> 0"),
    ("train", "max_steps"): (lambda v: v == -1 or v >= 1, "-1 (use epochs) or >= 1"),
    ("train", "warmup_ratio"): (lambda v: 0 <= v < 1, "in [0, 1)"),
    ("train", "weight_decay"): (_non_negative, ">= 0"),
    ("train", "gradient_accumulation_steps"): (lambda v: v >= 1, ">= 1"),
    ("train", "logging_steps"): (lambda v: v >= 1, ">= 1"),
    ("train", "save_steps"): (lambda v: v >= 1, ">= 1 (or null)"),
    ("train", "save_total_limit"): (lambda v: v >= 1, ">= 1 (or null: keep all)"),
    ("train", "dataloader_num_workers"): (lambda v: v >= 0, ">= 0"),
    ("train", "torch_threads"): (lambda v: v >= 1, ">= 1 (or null)"),
    ("eval", "steps"): (lambda v: v >= 1, ">= 1"),
}


def validate_recipe(recipe: Recipe, where: str = "recipe") -> Recipe:
    """``recipe``, or a ConfigError naming the first value outside its range (:data:`RANGES`)."""
    for (section, key), (ok, what) in RANGES.items():
        value = getattr(getattr(recipe, section), key)
        if value is not None and not ok(value):
            raise ConfigError(f"{where}: {section}.{key} must be {what}, got {value!r}")
    return recipe


def load_recipe(name_or_path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = (), *,
                kind: type = Recipe):
    """Read a recipe file and apply ``key=value`` overrides; ``kind``: the recipe class (:data:`RECIPE_KINDS`).
    A training recipe (:class:`Recipe`) is checked against :data:`RANGES`."""
    path = find_recipe(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        from capcse.errors import DataFormatError

        raise DataFormatError(path, line, f"invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of sections")
    data = copy.deepcopy(data)
    data.setdefault("name", path.stem)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {'.'.join(keys)}: {key} is not a section")
        node[keys[-1]] = value
    recipe = _build(kind, data, str(path))
    return validate_recipe(recipe, str(path)) if kind is Recipe else recipe


def recipe_from_dict(data: dict[str, Any], kind: type = Recipe):
    recipe = _build(kind, copy.deepcopy(data), "recipe")
    return validate_recipe(recipe) if kind is Recipe else recipe


def is_resume_safe(key: str, safe: tuple[str, ...]) -> bool:
    """``key`` (``section.name``) is one of ``safe``, where ``section.*`` stands for a whole section."""
    return any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in safe)


def unsafe_resume_overrides(saved_path: str | os.PathLike, overrides: list[str] | tuple[str, ...],
                            safe: tuple[str, ...], *, kind: type = Recipe) -> list[str]:
    """The ``--set`` texts of ``overrides`` that a resume of the run saved at ``saved_path`` must refuse: a
    key outside ``safe`` (:func:`is_resume_safe`) that changes the saved recipe (restating a saved value,
    e.g. ``7e-4`` for ``0.0007``, is harmless). ``capcse train`` and ``capcse pretrain`` each pass their
    own list of resume-safe keys."""
    saved = load_recipe(saved_path, kind=kind).to_dict()
    return [text for text in overrides if not is_resume_safe(".".join(parse_override(text)[0]), safe)
            and load_recipe(saved_path, [text], kind=kind).to_dict() != saved]


def resume_run(output: str | os.PathLike | None, recipe_name: str | None, overrides: list[str], safe: tuple[str, ...],
               *, kind: type = Recipe, command: str = "capcse train", checkpoint: str | None = None):
    """The recipe of a run to resume and its folder: the run's saved ``RUN/recipe.yaml`` with the resume-safe
    ``overrides`` (``capcse train --resume`` and ``capcse pretrain --resume`` share this rule).

    The run is ``output``, else the output folder of ``recipe_name``, else the parent of ``checkpoint``
    (``--resume RUN/checkpoint-N``). A recipe name that is not the run's own, or an override outside ``safe``
    that changes the saved recipe, is refused with a :class:`ConfigError`.
    """
    if output:
        run_dir = Path(output)
    elif recipe_name:
        run_dir = Path(load_recipe(recipe_name, overrides, kind=kind).output_dir)
    elif checkpoint:
        run_dir = Path(checkpoint).parent
    else:
        raise ConfigError("--resume: give the run with --output RUN (or the recipe it was started with)")
    saved_path = run_dir / "recipe.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"--resume: {saved_path} not found: {run_dir} is not a run started by {command}")
    saved = load_recipe(saved_path, kind=kind)
    if recipe_name and not (Path(recipe_name).is_file() and Path(recipe_name).resolve() == saved_path.resolve()):
        given = load_recipe(recipe_name, kind=kind).name
        if given != saved.name:
            raise ConfigError(f"--resume: {run_dir} is a run of recipe {saved.name!r}, not {given!r} "
                              "(omit the recipe to continue the run as it was started)")
    bad = unsafe_resume_overrides(saved_path, overrides, safe, kind=kind)
    if bad:
        raise ConfigError(f"--resume: {', '.join(bad)} would change what the run trains; a resume continues "
                          f"{saved_path} as saved (allowed: {', '.join(safe)}); start a new run instead")
    return load_recipe(saved_path, list(overrides) + [f"train.output_dir={run_dir}"], kind=kind), run_dir


def dump_recipe(recipe: Recipe) -> str:
    assert is_dataclass(recipe)
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False, allow_unicode=True)
