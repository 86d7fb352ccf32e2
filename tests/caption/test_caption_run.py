"""Captioning runs: determinism, sharding, resume after kill -9, bad images, webdataset input, CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from capcse.caption.generate import Captioner, DecodingConfig
from capcse.caption.run import RunSettings, caption_images, merge_runs
from capcse.cli import main as cli_main
from capcse.errors import CapcseError

FILES = ("captions.jsonl", "captions.txt", "skipped.jsonl")
SHORT = dict(max_length=8, min_length=5)


@pytest.fixture(scope="module")
def blip_captioner(tiny_blip) -> Captioner:
    return Captioner(str(tiny_blip), device="cpu")


def _settings(images, model, **kw) -> RunSettings:
    decoding = DecodingConfig(prompt=kw.pop("prompt", "a picture of"), **{**SHORT, **kw.pop("decoding", {})})
    return RunSettings(images=str(images), model=str(model), decoding=decoding,
                       **{"batch_size": 3, "chunk_size": 6, "seed": 11, **kw})


def _read(out: Path) -> dict[str, str]:
    return {f: (out / f).read_text(encoding="utf-8") for f in FILES}


def _run(settings, out, cap, **kw):
    return caption_images(settings, out, captioner=cap, num_workers=kw.pop("num_workers", 0), progress=False, **kw)


def test_bad_files_are_skipped_and_reported(tmp_path, image_folder, tiny_blip, blip_captioner):
    stats = _run(_settings(image_folder, tiny_blip), tmp_path / "out", blip_captioner, num_workers=2)
    assert stats.assembled
    out = tmp_path / "out"
    records = [json.loads(x) for x in (out / "captions.jsonl").read_text().splitlines()]
    skipped = {json.loads(x)["id"]: json.loads(x)["reason"] for x in (out / "skipped.jsonl").read_text().splitlines()}
    assert sorted(skipped) == ["bad_corrupt.jpg", "bad_text.jpg", "bad_truncated.jpg", "bad_zero.jpg"]
    assert skipped["bad_zero.jpg"] == "empty file (0 bytes)"
    assert skipped["bad_text.jpg"].startswith("not an image")
    assert skipped["bad_truncated.jpg"].startswith("truncated or corrupt image")
    assert skipped["bad_corrupt.jpg"].startswith("truncated or corrupt image")
    good = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.jpg")
                  if not p.name.startswith("bad_"))
    assert [r["id"] for r in records] == good  # every good image once, in sorted order
    assert "sub/" in records[-1]["id"]
    r = records[0]
    assert r["model"] == str(tiny_blip) and r["seed"] == 11 and r["caption_index"] == 0
    assert r["decoding"] == {"method": "nucleus", "top_p": 0.9, "top_k": 50, "temperature": 1.0, "min_length": 5,
                             "max_length": 8, "repetition_penalty": 1.1, "prompt": "a picture of", "num_captions": 1}
    assert (out / "captions.txt").read_text().splitlines() == [x["caption"] for x in records]
    report = json.loads((out / "report.json").read_text())
    assert report["images_captioned"] == 12 and report["images_skipped"] == 4 and report["captions"] == 12
    assert report["skipped_by_reason"] == {"empty file (0 bytes)": 1, "not an image": 1,
                                           "truncated or corrupt image": 2}


def test_same_seed_and_batch_size_give_the_same_captions(tmp_path, image_folder, tiny_blip, blip_captioner):
    s = _settings(image_folder, tiny_blip)
    _run(s, tmp_path / "a", blip_captioner, num_workers=0)
    _run(s, tmp_path / "b", blip_captioner, num_workers=2)  # worker count does not matter
    assert _read(tmp_path / "a") == _read(tmp_path / "b")
    _run(_settings(image_folder, tiny_blip, seed=12), tmp_path / "c", blip_captioner)
    assert _read(tmp_path / "c")["captions.txt"] != _read(tmp_path / "a")["captions.txt"]
    # the chunk size only groups batches for writing: same batches, same captions
    _run(_settings(image_folder, tiny_blip, chunk_size=9), tmp_path / "d", blip_captioner)
    assert _read(tmp_path / "d") == _read(tmp_path / "a")


def test_shards_together_equal_the_single_run(tmp_path, image_folder, tiny_blip, blip_captioner):
    s = _settings(image_folder, tiny_blip)
    _run(s, tmp_path / "single", blip_captioner)
    # three shards writing into one shared folder
    partial = [_run(s, tmp_path / "shared", blip_captioner, shard=(i, 3)) for i in range(3)]
    assert [p.assembled for p in partial] == [False, False, True]
    assert [p.chunks_done_now for p in partial] == [1, 1, 1]
    assert _read(tmp_path / "shared") == _read(tmp_path / "single")
    # two shards in separate folders, merged afterwards; their chunks do not overlap
    for i in range(2):
        _run(s, tmp_path / f"shard{i}", blip_captioner, shard=(i, 2))
    c0 = {p.name for p in (tmp_path / "shard0" / "chunks").glob("*-c*.jsonl") if "skipped" not in p.name}
    c1 = {p.name for p in (tmp_path / "shard1" / "chunks").glob("*-c*.jsonl") if "skipped" not in p.name}
    assert c0 and c1 and not (c0 & c1)
    assert merge_runs(tmp_path / "merged", [tmp_path / "shard0", tmp_path / "shard1"]) == (True, [])
    assert _read(tmp_path / "merged") == _read(tmp_path / "single")


def test_resume_skips_done_chunks_and_refuses_other_settings(tmp_path, image_folder, tiny_blip, blip_captioner):
    s = _settings(image_folder, tiny_blip)
    first = _run(s, tmp_path / "o", blip_captioner)
    again = _run(s, tmp_path / "o", blip_captioner)
    assert again.chunks_done_now == 0 and again.chunks_skipped_existing == first.chunks_done_now
    with pytest.raises(CapcseError, match="other settings.*seed"):
        _run(_settings(image_folder, tiny_blip, seed=3), tmp_path / "o", blip_captioner)
    with pytest.raises(CapcseError, match="multiple of"):
        _run(_settings(image_folder, tiny_blip, chunk_size=4), tmp_path / "x", blip_captioner)


def test_webdataset_input_keeps_alt_text(tmp_path, flickr_images, tiny_blip, blip_captioner):
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(2):
        with tarfile.open(shards / f"{s:05d}.tar", "w") as tf:
            for k in range(4):
                key = f"{s:05d}{k:04d}"
                members = [(f"{key}.txt", f"alt text {s}-{k}".encode()),
                           (f"{key}.json", json.dumps({"url": f"http://example.com/{key}.jpg"}).encode())]
                if (s, k) != (1, 2):  # one failed download: no image
                    members.insert(0, (f"{key}.jpg", flickr_images[4 * s + k].read_bytes()))
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
    _run(_settings(shards, tiny_blip, batch_size=2, chunk_size=2), tmp_path / "out", blip_captioner)
    records = [json.loads(x) for x in (tmp_path / "out" / "captions.jsonl").read_text().splitlines()]
    assert [(r["part"], r["id"], r["alt_text"]) for r in records] == [
        (f"{s:05d}.tar", f"{s:05d}{k:04d}", f"alt text {s}-{k}") for s in range(2) for k in range(4) if (s, k) != (1, 2)]
    assert records[0]["url"] == "http://example.com/000000000.jpg"
    skipped = [json.loads(x) for x in (tmp_path / "out" / "skipped.jsonl").read_text().splitlines()]
    assert [(x["id"], x["reason"]) for x in skipped] == [("000010002", "webdataset sample has no image member")]


def test_other_architecture_end_to_end(tmp_path, image_folder, tiny_vit_bert):
    cap = Captioner(str(tiny_vit_bert), device="cpu")
    stats = _run(_settings(image_folder, tiny_vit_bert, decoding={"method": "beam"}), tmp_path / "o", cap)
    assert stats.assembled and stats.images_now == 12 and stats.failed_now == 4


def _cli_args(images, model, out) -> list[str]:
    return ["caption", "--images", str(images), "--model", str(model), "--out", str(out), "--batch-size", "2",
            "--chunk-size", "2", "--max-length", "12", "--min-length", "12", "--prompt", "a picture of",
            "--seed", "5", "--device", "cpu", "--num-workers", "1", "--quiet"]


def test_cli_in_process(tmp_path, image_folder, tiny_blip, capsys):
    assert cli_main(_cli_args(image_folder, tiny_blip, tmp_path / "o")) == 0
    assert "corpus complete" in capsys.readouterr().out
    assert len((tmp_path / "o" / "captions.txt").read_text().splitlines()) == 12
    assert cli_main(["caption", "--images", str(image_folder)]) == 2


@pytest.mark.slow
def test_resume_after_kill_minus_9(tmp_path, flickr_images, tiny_blip):
    """SIGKILL the CLI after a few chunks, run it again: same files as an uninterrupted run."""
    images = tmp_path / "images"
    images.mkdir()
    for p in flickr_images[:40]:
        shutil.copy(p, images / p.name)
    (images / "zz_bad.jpg").write_bytes(b"")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "capcse"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + _cli_args(images, tiny_blip, killed), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = killed / "chunks"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if chunks.is_dir() and len([p for p in chunks.glob("*-c*.jsonl") if "skipped" not in p.name]) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len([p for p in chunks.glob("*-c*.jsonl") if "skipped" not in p.name])
    assert 3 <= done_before < 21 and not (killed / "captions.jsonl").exists()
    assert subprocess.run(cmd + _cli_args(images, tiny_blip, killed), env=env, capture_output=True).returncode == 0
    full = tmp_path / "full"
    assert subprocess.run(cmd + _cli_args(images, tiny_blip, full), env=env, capture_output=True).returncode == 0
    assert _read(killed) == _read(full)
    lines = (full / "captions.jsonl").read_text().splitlines()
    ids = [json.loads(x)["id"] for x in lines]
    assert len(ids) == 40 == len(set(ids))  # no loss, no duplicates
    assert [json.loads(x)["id"] for x in (full / "skipped.jsonl").read_text().splitlines()] == ["zz_bad.jpg"]
