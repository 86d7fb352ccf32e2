"""benchmarks/caption_throughput.py end to end on a tiny random BLIP: both sides caption every image
(also when the data folder is given as a relative path), and the RESULT line carries the figures."""

from __future__ import annotations

import os
import tempfile

import pytest


def test_tiny_run_captions_every_image(load_benchmark, data_dir, capsys, tmp_path, monkeypatch):
    bench = load_benchmark("caption_throughput")
    # The script links the images into a temporary folder. Given the data folder as a path relative to
    # the working directory, links must not be relative to it: put the temporary folder deeper than the
    # working directory, where the same relative path points nowhere.
    monkeypatch.chdir(tmp_path)
    deep = tmp_path / "a" / "b" / "c" / "d" / "e" / "f"
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    relative = os.path.relpath(data_dir, tmp_path)
    assert bench.main(["--tiny", "--data-dir", relative, "--images", "4", "--per-image-count", "2",
                       "--batch-size", "2", "--num-workers", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "batched   : 4 images" in out and "per-image : 2 images" in out
    result = out.strip().splitlines()[-1]
    assert result.startswith("RESULT caption_throughput ratio=")
    figures = dict(item.split("=", 1) for item in result.split()[2:])
    assert float(figures["batched_ips"]) > 0 and float(figures["per_image_ips"]) > 0
    assert float(figures["vision_only_ips"]) > 0
    assert float(figures["vision_only_ratio"]) == pytest.approx(
        float(figures["vision_only_ips"]) / float(figures["per_image_ips"]), rel=0.02)
    assert figures["images"] == "4" and figures["target"] == "4"
