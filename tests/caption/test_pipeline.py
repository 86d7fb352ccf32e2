"""The caption -> filter -> SimCSE -> report pipeline, end to end on tiny models and real images."""

import json
import shutil

import pytest
import yaml

from capcse.caption.pipeline import load_pipeline, run_pipeline
from capcse.errors import ConfigError


def _write(tmp_path, cfg):
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_generate_filter_train_report_and_skip_on_rerun(tmp_path, flickr_images, tiny_blip, tiny_bert_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in flickr_images[:6]:
        shutil.copy(p, images / p.name)
    cfg = {
        "name": "tiny-pipe",
        "output_dir": str(tmp_path / "out"),
        "captions": {"source": "generate", "images": str(images), "model": str(tiny_blip),
                     "decoding": {"method": "nucleus", "top_p": 0.9, "min_length": 3, "max_length": 8},
                     "batch_size": 2, "chunk_size": 2, "device": "cpu", "num_workers": 0, "progress": False},
        "filter": {"min_chars": 1},
        "train": {"recipe": "caption-simcse",
                  "set": [f"model.name={tiny_bert_path}", "train.max_steps=2", "train.batch_size=2",
                          "train.report_to=none", "eval.during=none", "eval.final=none", "train.device=cpu"]},
    }
    logs = []
    summary = run_pipeline(load_pipeline(_write(tmp_path, cfg)), log=logs.append)
    out = tmp_path / "out"
    captions = (out / "captions" / "captions.txt").read_text().splitlines()
    assert len(captions) == 6
    kept = (out / "filtered" / "filtered.txt").read_text().splitlines()
    assert summary["filter"]["kept"] == len(kept) and summary["filter"]["input"] == 6
    assert (out / "stats" / "stats.json").exists() and (out / "stats" / "lengths.png").exists()
    assert summary["train"]["steps"] == 2
    assert (out / "train" / "model" / "model.safetensors").exists()
    assert json.loads((out / "pipeline.json").read_text())["name"] == "tiny-pipe"
    assert "SimCSE: 2 steps" in (out / "report.md").read_text()

    logs.clear()
    again = run_pipeline(load_pipeline(_write(tmp_path, cfg)), log=logs.append)
    assert any("filter:" in m and "skipped" in m for m in logs)
    assert any("train:" in m and "skipped" in m for m in logs)
    assert again["train"]["steps"] == 2


def test_table_source_writes_human_captions(tmp_path, tiny_bert_path):
    table = tmp_path / "caps.tsv"
    table.write_text("image\tcaption\tsplit\n"
                     "a.jpg\tA dog runs across a wide green field of grass.\ttrain\n"
                     "a.jpg\tshort one\ttrain\n"
                     "b.jpg\tTwo children are playing football on the beach today.\ttrain\n"
                     "c.jpg\tA test caption that must not be used for training at all.\ttest\n")
    cfg = {"name": "t", "output_dir": str(tmp_path / "o"),
           "captions": {"source": "table", "table": str(table), "split": "train"},
           "filter": {"min_chars": 20}, "stats": False,
           "train": {"set": [f"model.name={tiny_bert_path}", "train.max_steps=1", "train.batch_size=2",
                             "train.report_to=none", "eval.during=none", "eval.final=none"]}}
    summary = run_pipeline(load_pipeline(_write(tmp_path, cfg)), log=lambda m: None)
    assert (tmp_path / "o" / "captions" / "captions.txt").read_text().splitlines() == [
        "A dog runs across a wide green field of grass.", "short one",
        "Two children are playing football on the beach today."]
    assert summary["filter"]["kept"] == 2


def test_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="needs 'captions' and 'train'"):
        load_pipeline(_write(tmp_path, {"name": "x"}))
    with pytest.raises(ConfigError, match="unknown pipeline key"):
        load_pipeline(_write(tmp_path, {"captions": {}, "train": {}, "trian": 1}))


def test_shipped_pipeline_configs_load():
    for name in ("caption-simcse-pipeline", "caption-simcse-pipeline-human"):
        cfg = load_pipeline(name)
        assert cfg.filter["min_chars"] == 40 and cfg.train["recipe"] == "caption-simcse"
