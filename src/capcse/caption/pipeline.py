"""The caption -> SimCSE pipeline as one recipe: caption images (or take a human caption table as a
stand-in) -> filter -> corpus statistics -> unsupervised SimCSE (a training recipe) -> STS evaluation
-> report. Each step writes into its own folder under ``output_dir`` and is skipped when its output
already exists, so an interrupted pipeline continues where it stopped (captioning itself resumes
chunk by chunk).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from capcse.errors import ConfigError
from capcse.io import atomic_open, atomic_write_json, atomic_write_text


@dataclass
class PipelineConfig:
    name: str
    output_dir: Path
    captions: dict[str, Any]
    filter: dict[str, Any] = field(default_factory=dict)
    stats: bool = True
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def load_pipeline(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    from capcse.train.recipe import find_recipe, parse_override

    path = find_recipe(path)
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    unknown = set(data) - {"name", "output_dir", "captions", "filter", "stats", "train", "description",
                           "reference", "kind"}
    if unknown:
        raise ConfigError(f"{path}: unknown pipeline key(s) {sorted(unknown)}")
    if "captions" not in data or "train" not in data:
        raise ConfigError(f"{path}: a pipeline needs 'captions' and 'train' sections")
    name = data.get("name", Path(path).stem)
    return PipelineConfig(name=name, output_dir=Path(data.get("output_dir") or f"outputs/{name}"),
                          captions=dict(data["captions"]), filter=dict(data.get("filter") or {}),
                          stats=bool(data.get("stats", True)), train=dict(data["train"]),
                          description=data.get("description", ""))


def _captions_step(cfg: dict[str, Any], out: Path, log: Callable[[str], Any]) -> Path:
    """-> a one-caption-per-line text file."""
    source = cfg.get("source", "generate")
    if source == "table":
        target = out / "captions.txt"
        if target.exists():
            log(f"captions: {target} exists, skipped")
            return target
        from capcse.data.loaders import load_caption_table

        rows = load_caption_table(cfg["table"], data_dir=cfg.get("data_dir"), split=cfg.get("split", "train"))
        with atomic_open(target) as fh:
            for row in rows:
                fh.write(" ".join(row.caption.split()) + "\n")
        atomic_write_json(out / "report.json", {"source": "table", "table": cfg["table"],
                                                "split": cfg.get("split", "train"), "captions": len(rows)})
        log(f"captions: {len(rows)} human captions of {cfg['table']} ({cfg.get('split', 'train')}) -> {target}")
        return target
    if source != "generate":
        raise ConfigError(f"captions.source must be 'generate' or 'table', got {source!r}")
    from capcse.caption.generate import decoding_from_dict
    from capcse.caption.run import RunSettings, caption_images

    settings = RunSettings(images=str(cfg["images"]), model=cfg.get("model", "Salesforce/blip-image-captioning-large"),
                           decoding=decoding_from_dict(cfg.get("decoding", {})), seed=int(cfg.get("seed", 0)),
                           batch_size=int(cfg.get("batch_size", 16)), chunk_size=int(cfg.get("chunk_size", 1024)),
                           dtype=cfg.get("dtype", "fp32"), autocast=cfg.get("autocast"),
                           attention=cfg.get("attention", "sdpa"))
    stats = caption_images(settings, out, device=cfg.get("device", "auto"),
                           num_workers=int(cfg.get("num_workers", 2)), progress=bool(cfg.get("progress", True)))
    if not stats.assembled:
        raise ConfigError(f"captioning incomplete: {len(stats.missing_chunks)} chunk(s) missing in {out} "
                          "(other shards still running?)")
    log(f"captions: {stats.images_now} images captioned now, {stats.chunks_skipped_existing} chunk(s) reused")
    return out / "captions.txt"


def run_pipeline(cfg: PipelineConfig, *, log: Callable[[str], Any] = print) -> dict[str, Any]:
    from capcse.caption.filters import FilterConfig, filter_corpus
    from capcse.caption.stats import describe_corpora
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import run_training

    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"name": cfg.name, "output_dir": str(out)}

    corpus = _captions_step(cfg.captions, out / "captions", log)
    summary["captions"] = str(corpus)

    filtered_dir = out / "filtered"
    if (filtered_dir / "report.json").exists():
        import json

        report = json.loads((filtered_dir / "report.json").read_text())
        log(f"filter: {filtered_dir} exists, skipped")
    else:
        fcfg = FilterConfig(min_chars=cfg.filter.get("min_chars"), max_chars=cfg.filter.get("max_chars"),
                            min_tokens=cfg.filter.get("min_tokens"), max_tokens=cfg.filter.get("max_tokens"),
                            tokenizer=cfg.filter.get("tokenizer"), dedup=bool(cfg.filter.get("dedup", False)),
                            near_dup_threshold=cfg.filter.get("near_dup"))
        report = filter_corpus(corpus, filtered_dir, fcfg)
        log(f"filter: kept {report.get('kept')} of {report.get('input')}")
    summary["filter"] = report
    train_file = filtered_dir / "filtered.txt"

    if cfg.stats:
        stats_dir = out / "stats"
        if not (stats_dir / "stats.json").exists():
            describe_corpora([f"raw={corpus}", f"filtered={train_file}"], stats_dir)
        summary["stats"] = str(stats_dir / "stats.md")

    train_dir = out / "train"
    if (train_dir / "train_summary.json").exists():
        import json

        summary["train"] = json.loads((train_dir / "train_summary.json").read_text())
        log(f"train: {train_dir} exists, skipped")
    else:
        overrides = list(cfg.train.get("set", [])) + [f"data.train={train_file}", f"train.output_dir={train_dir}"]
        recipe = load_recipe(cfg.train.get("recipe", "caption-simcse"), overrides)
        summary["train"] = run_training(recipe, log=log).to_dict()
    atomic_write_json(out / "pipeline.json", summary)
    atomic_write_text(out / "report.md", pipeline_markdown(summary))
    return summary


def pipeline_markdown(summary: dict[str, Any]) -> str:
    f = summary.get("filter", {})
    lines = [f"# {summary['name']}", "", f"* captions: `{summary.get('captions')}`",
             f"* filter: kept {f.get('kept')} of {f.get('input')} (removed per filter: {f.get('removed')})"]
    if summary.get("stats"):
        lines.append(f"* corpus statistics: `{summary['stats']}`")
    train = summary.get("train") or {}
    lines.append(f"* SimCSE: {train.get('steps')} steps on {train.get('train_examples')} captions, model "
                 f"`{train.get('model_dir')}`")
    test = (train.get("test") or {}).get("results") or {}
    if test:
        names = [k for k in test if isinstance(test[k], dict) and "cosine_spearman" in test[k]]
        lines += ["", "| " + " | ".join(names) + " | Avg. |", "|" + "---:|" * (len(names) + 1),
                  "| " + " | ".join(f"{test[n]['cosine_spearman']:.2f}" for n in names)
                  + f" | {train['test'].get('avg', float('nan')):.2f} |"]
    return "\n".join(lines) + "\n"
