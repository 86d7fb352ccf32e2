"""Caption resume keyed by image identity (issue 16, item 3): a changed input set is resumed or refused."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from capcse.caption.generate import Captioner, DecodingConfig
from capcse.caption.run import RunSettings, caption_images, merge_runs
from capcse.errors import CapcseError


@pytest.fixture(scope="module")
def blip_captioner(tiny_blip) -> Captioner:
    return Captioner(str(tiny_blip), device="cpu")


@pytest.fixture
def seven_images(tmp_path, flickr_images) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, src in enumerate(flickr_images[:7]):
        shutil.copy(src, folder / f"m{i}.jpg")
    return folder


def _settings(images, model) -> RunSettings:
    return RunSettings(images=str(images), model=str(model), decoding=DecodingConfig(max_length=8, min_length=5),
                       batch_size=2, chunk_size=4, seed=3)


def _run(images, model, out, cap, **kw):
    return caption_images(_settings(images, model), out, captioner=cap, num_workers=0, progress=False, **kw)


def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "captions.jsonl").read_text().splitlines()]


def test_adding_an_image_that_sorts_first_resumes_without_duplicate_or_loss(
        tmp_path, seven_images, flickr_images, tiny_blip, blip_captioner):
    """The issue's scenario: 7 images captioned, one added that sorts first, the same command again."""
    out = tmp_path / "out"
    first = _run(seven_images, tiny_blip, out, blip_captioner)
    assert first.assembled and first.images_now == 7 and first.chunks_done_now == 2  # chunks [0,4) [4,7)
    before = {r["id"]: r["caption"] for r in _records(out)}
    shutil.copy(flickr_images[10], seven_images / "a_new.jpg")  # sorts before every m*.jpg
    again = _run(seven_images, tiny_blip, out, blip_captioner)
    assert again.images_now == 1 and again.chunks_done_now == 1 and again.chunks_skipped_existing == 2
    recs = _records(out)
    ids = [r["id"] for r in recs]
    assert ids == [f"m{i}.jpg" for i in range(7)] + ["a_new.jpg"]  # recorded order, the new image appended
    assert len(ids) == len(set(ids)) == 8                             # no duplicate, none missing
    assert [r["position"] for r in recs] == list(range(8))
    assert {i: c for i, c in ((r["id"], r["caption"]) for r in recs) if i != "a_new.jpg"} == before  # untouched
    part = json.loads((out / "chunks" / "p000000.part.json").read_text())
    assert part["segments"] == [7, 1] and part["chunks"] == 3 and part["items"] == 8
    assert [x[0] for x in part["identity"]] == ids
    assert json.loads((out / "report.json").read_text())["images_captioned"] == 8
    # a third run with nothing new does nothing
    third = _run(seven_images, tiny_blip, out, blip_captioner)
    assert third.images_now == 0 and third.chunks_skipped_existing == 3


def test_added_images_on_an_interrupted_run_fill_both_old_and_new_chunks(
        tmp_path, seven_images, flickr_images, tiny_blip, blip_captioner):
    out = tmp_path / "out"
    _run(seven_images, tiny_blip, out, blip_captioner, shard=(0, 2))  # only chunk 0 of [0,4) [4,7): "killed"
    assert not (out / "captions.jsonl").exists()
    shutil.copy(flickr_images[10], seven_images / "a_new.jpg")
    shutil.copy(flickr_images[11], seven_images / "z_new.jpg")
    stats = _run(seven_images, tiny_blip, out, blip_captioner)
    assert stats.assembled and stats.images_now == 5  # m4..m6 of the old chunk 1, the two new ones
    assert [r["id"] for r in _records(out)] == [f"m{i}.jpg" for i in range(7)] + ["a_new.jpg", "z_new.jpg"]


def test_a_removed_or_changed_image_is_refused_with_a_message(tmp_path, seven_images, tiny_blip, blip_captioner):
    out = tmp_path / "out"
    _run(seven_images, tiny_blip, out, blip_captioner)
    moved = tmp_path / "m2.jpg"
    shutil.move(seven_images / "m2.jpg", moved)
    with pytest.raises(CapcseError, match=r"1 image\(s\) of the recorded run are gone \('m2.jpg'\).*another --out"):
        _run(seven_images, tiny_blip, out, blip_captioner)
    shutil.move(moved, seven_images / "m2.jpg")
    _run(seven_images, tiny_blip, out, blip_captioner)  # restored: resumes again
    with open(seven_images / "m5.jpg", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(CapcseError, match=r"1 image file\(s\) changed size or time .*'m5.jpg'"):
        _run(seven_images, tiny_blip, out, blip_captioner)


def test_a_reordered_list_keeps_the_recorded_order(tmp_path, seven_images, tiny_blip, blip_captioner):
    names = [f"m{i}.jpg" for i in range(7)]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"images/{n}\n" for n in names))
    out = tmp_path / "out"
    _run(listing, tiny_blip, out, blip_captioner)
    before = (out / "captions.jsonl").read_text()
    listing.write_text("".join(f"images/{n}\n" for n in reversed(names)))
    stats = _run(listing, tiny_blip, out, blip_captioner)
    assert stats.images_now == 0 and (out / "captions.jsonl").read_text() == before


def test_a_run_folder_without_identities_continues_only_with_the_same_count(
        tmp_path, seven_images, flickr_images, tiny_blip, blip_captioner):
    out = tmp_path / "out"
    _run(seven_images, tiny_blip, out, blip_captioner)
    part_file = out / "chunks" / "p000000.part.json"
    legacy = {k: v for k, v in json.loads(part_file.read_text()).items() if k in ("index", "name", "items", "chunks")}
    part_file.write_text(json.dumps(legacy))
    assert _run(seven_images, tiny_blip, out, blip_captioner).images_now == 0
    part_file.write_text(json.dumps(legacy))
    shutil.copy(flickr_images[10], seven_images / "a_new.jpg")
    with pytest.raises(CapcseError, match="had 7 images when this run started and has 8 now"):
        _run(seven_images, tiny_blip, out, blip_captioner)


def test_merge_refuses_shards_made_on_different_input_sets(
        tmp_path, seven_images, flickr_images, tiny_blip, blip_captioner):
    _run(seven_images, tiny_blip, tmp_path / "s0", blip_captioner, shard=(0, 2))
    shutil.copy(flickr_images[10], seven_images / "a_new.jpg")
    _run(seven_images, tiny_blip, tmp_path / "s1", blip_captioner, shard=(1, 2))
    with pytest.raises(CapcseError, match="input set for part p000000 differs"):
        merge_runs(tmp_path / "merged", [tmp_path / "s0", tmp_path / "s1"])


def test_identity_of_a_file_is_key_size_and_mtime(tmp_path):
    from capcse.caption.run import item_identity
    from capcse.data.images import ImageItem

    f = tmp_path / "x.jpg"
    f.write_bytes(b"12345")
    os.utime(f, ns=(1_000_000_000, 2_000_000_000))
    assert item_identity(ImageItem(key="x.jpg", path=str(f), file=str(f))) == ["x.jpg", 5, 2_000_000_000]
    assert item_identity(ImageItem(key="k", path="t/k.jpg", file="t.tar", data_offset=512, size=9)) == ["k", 9, 512]
    assert item_identity(ImageItem(key="gone", path="gone", file=str(tmp_path / "gone"))) == ["gone", None, None]


@pytest.mark.parametrize("tty", [True, False])
def test_caption_progress_is_a_bar_with_total_on_a_terminal_and_silent_in_logs(
        tmp_path, seven_images, tiny_blip, blip_captioner, monkeypatch, capsys, tty):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)  # capsys's stream, told it is (not) a terminal
    caption_images(_settings(seven_images, tiny_blip), tmp_path / "out", captioner=blip_captioner, num_workers=0)
    err = capsys.readouterr().err
    if tty:   # tqdm: "caption: 100%|...| 7/7 [00:01<00:00, 5.1img/s, chunks=2, skipped=0]"
        assert "caption" in err and "7/7" in err and "img/s" in err and "chunks=2" in err
    else:
        assert err == ""
