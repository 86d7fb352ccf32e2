"""Image sources: folders, lists, webdataset tars; decoding errors; sharding; the background loader."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from capcse.data.images import (
    chunk_owner,
    decode_image,
    index_tar,
    make_loader,
    open_image_source,
    parse_shard,
)
from capcse.errors import CapcseError, DataFormatError


@pytest.fixture(scope="module")
def jpegs(data_dir) -> list[Path]:
    images = sorted((data_dir / "coco_mini").rglob("*.jpg"))
    if len(images) < 6:
        pytest.skip("coco_mini images not found")
    return images[:6]


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def write_img2dataset_tar(path: Path, samples: list[tuple[str, bytes | None, str, dict]]) -> Path:
    """(key, jpeg bytes or None, alt-text, json) per sample, members in img2dataset's order jpg, txt, json."""
    with tarfile.open(path, "w") as tf:
        for key, jpg, txt, meta in samples:
            if jpg is not None:
                _add(tf, f"{key}.jpg", jpg)
            _add(tf, f"{key}.txt", txt.encode())
            _add(tf, f"{key}.json", json.dumps(meta).encode())
    return path


def test_folder_is_recursive_sorted_and_ignores_non_images(tmp_path, jpegs):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "z.jpg").write_bytes(jpegs[0].read_bytes())
    (tmp_path / "b" / "a.JPEG").write_bytes(jpegs[1].read_bytes())
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden" / "x.jpg").write_bytes(b"")
    (tmp_path / ".y.jpg").write_bytes(b"")
    src = open_image_source(tmp_path)
    assert src.kind == "folder" and len(src.parts) == 1
    assert [it.key for it in src.parts[0].items] == ["a.png", "b/a.JPEG", "z.jpg"]
    assert src.parts[0].items[2].read_bytes() == jpegs[0].read_bytes()


def test_list_and_csv_sources(tmp_path, jpegs):
    (tmp_path / "list.txt").write_text(f"# comment\n{jpegs[0]}\n\nrel.jpg\n")
    items = open_image_source(tmp_path / "list.txt").parts[0].items
    assert [it.file for it in items] == [str(jpegs[0]), str(tmp_path / "rel.jpg")]
    (tmp_path / "l.csv").write_text(f"image_id,filepath,caption\n7,{jpegs[1]},\"a cat, sleeping\"\n8,x.jpg,dog\n")
    items = open_image_source(tmp_path / "l.csv").parts[0].items
    assert [(it.key, it.alt_text) for it in items] == [("7", "a cat, sleeping"), ("8", "dog")]
    assert items[1].file == str(tmp_path / "x.jpg")
    (tmp_path / "l.tsv").write_text("path\tnote\na.jpg\tx\nb.jpg\n")
    with pytest.raises(DataFormatError, match=r"l\.tsv:3"):
        open_image_source(tmp_path / "l.tsv").parts[0].items
    (tmp_path / "nopath.csv").write_text("name,caption\na,b\n")
    with pytest.raises(DataFormatError, match="no image path column"):
        open_image_source(tmp_path / "nopath.csv").parts[0].items


def test_webdataset_tar_read_correctly(tmp_path, jpegs):
    samples = [
        ("000000000", jpegs[0].read_bytes(), "alt text zero", {"url": "http://x/0.jpg", "key": "000000000"}),
        ("000000001", None, "no image here", {"url": "http://x/1.jpg", "status": "failed_to_download"}),
        ("000000002", jpegs[1].read_bytes(), "alt two", {"url": "http://x/2.jpg"}),
    ]
    tar = write_img2dataset_tar(tmp_path / "00000.tar", samples)
    items = index_tar(tar)
    assert [it.key for it in items] == ["000000000", "000000001", "000000002"]
    assert [it.alt_text for it in items] == ["alt text zero", "no image here", "alt two"]
    assert items[0].meta["url"] == "http://x/0.jpg"
    assert items[0].read_bytes() == jpegs[0].read_bytes()
    assert items[2].read_bytes() == jpegs[1].read_bytes()
    assert items[1].error == "webdataset sample has no image member"
    assert items[0].error is None and items[0].path == "00000.tar/000000000.jpg"
    assert decode_image(items[2].read_bytes()).size == decode_image(jpegs[1].read_bytes()).size


def test_webdataset_shard_sets_folder_glob_and_range(tmp_path, jpegs):
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(3):
        write_img2dataset_tar(shards / f"{s:05d}.tar", [(f"{s:05d}{k:04d}", jpegs[k].read_bytes(), f"t{s}{k}", {})
                                                      for k in range(2)])
    (shards / "00000_stats.json").write_text("{}")
    by_dir = open_image_source(shards)
    assert by_dir.kind == "webdataset"
    assert [p.name for p in by_dir.parts] == ["00000.tar", "00001.tar", "00002.tar"]
    assert [it.alt_text for it in by_dir.parts[2].items] == ["t20", "t21"]
    assert [p.name for p in open_image_source(str(shards / "*.tar")).parts] == [p.name for p in by_dir.parts]
    ranged = open_image_source(str(shards / "{00001..00002}.tar"))
    assert [p.name for p in ranged.parts] == ["00001.tar", "00002.tar"]
    assert [p.name for p in open_image_source(shards / "00001.tar").parts] == ["00001.tar"]
    with pytest.raises(CapcseError, match="not found"):
        open_image_source(str(shards / "{00007..00008}.tar"))


def test_truncated_tar_is_reported_not_fatal(tmp_path, jpegs):
    tar = write_img2dataset_tar(tmp_path / "t.tar", [(f"k{k}", jpegs[k].read_bytes(), "x", {}) for k in range(4)])
    data = tar.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) * 2 // 3])
    items = index_tar(cut)
    assert items[-1].error is not None and "tar" in items[-1].error
    assert items[0].error is None and items[0].read_bytes() == jpegs[0].read_bytes()
    # a member whose data was cut off is read short -> an OSError the loader turns into a skip
    short = [it for it in items if it.error is None and it.data_offset + it.size > len(cut.read_bytes())]
    for it in short:
        with pytest.raises(OSError, match="truncated"):
            it.read_bytes()


def test_decode_image_reasons(jpegs):
    data = jpegs[0].read_bytes()
    assert decode_image(data).mode == "RGB"
    cases = {b"": "empty file (0 bytes)", b"hello world\n": "not an image",
             data[: len(data) // 2]: "truncated or corrupt image"}
    for blob, reason in cases.items():
        with pytest.raises(ValueError) as exc:
            decode_image(blob)
        assert str(exc.value).startswith(reason)


def test_shard_parsing_and_chunk_assignment_is_a_partition():
    assert parse_shard(None) == (0, 1) and parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(CapcseError):
            parse_shard(bad)
    for n in (1, 2, 3, 5):
        owners = {(p, c): chunk_owner(p, c, n) for p in range(4) for c in range(7)}
        for i in range(n):
            mine = {k for k, v in owners.items() if v == i}
            assert mine  # every shard gets work
        assert set(owners.values()) == set(range(n))


def test_loader_keeps_batch_composition_and_reports_bad_items(tmp_path, jpegs):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for k, j in enumerate(jpegs[:4]):
        (folder / f"{k}.jpg").write_bytes(j.read_bytes())
    (folder / "4.jpg").write_bytes(b"")
    (folder / "5.jpg").write_text("text")
    items = open_image_source(folder).parts[0].items

    def transform(im):
        import torch

        return torch.tensor([im.size[0], im.size[1]], dtype=torch.float32)

    batches = [[0, 1, 4], [2, 5], [3]]
    for workers in (0, 2):
        out = list(make_loader(items, batches, transform, num_workers=workers))
        assert [b["indices"] for b in out] == batches
        assert [b["good"] for b in out] == [[0, 1], [2], [3]]
        assert out[0]["errors"] == {4: "empty file (0 bytes)"}
        assert out[1]["errors"][5].startswith("not an image")
        assert out[0]["pixel_values"].tolist()[0] == list(decode_image(jpegs[0].read_bytes()).size)
