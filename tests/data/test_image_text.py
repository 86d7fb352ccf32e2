"""Image-caption pair readers: every supported format, image resolution, skips counted, bad lines named."""

from __future__ import annotations

import json

import pytest

from capcse.data.image_text import read_image_text_pairs
from capcse.errors import ConfigError, DataFormatError


def touch_images(root, names):
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\xff\xd8jpeg")  # existence is what the reader checks; decoding is the cache's job


def test_karpathy_json_with_filepath_and_split(tmp_path):
    touch_images(tmp_path, ["val2014/a.jpg", "train2014/b.jpg"])
    data = {"images": [
        {"filename": "a.jpg", "filepath": "val2014", "split": "test", "sentences": [{"raw": " A cat. "}, {"raw": "Cat"}]},
        {"filename": "b.jpg", "filepath": "train2014", "split": "train", "sentences": [{"raw": "A dog."}]},
        {"filename": "c.jpg", "filepath": "train2014", "split": "train", "sentences": [{"raw": "No image."}]},
    ]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(data))
    t = read_image_text_pairs(tmp_path / "dataset_coco.json", image_root=tmp_path)
    assert [(p.image_id, p.caption, p.split) for p in t] == [
        ("val2014/a.jpg", "A cat.", "test"), ("val2014/a.jpg", "Cat", "test"), ("train2014/b.jpg", "A dog.", "train")]
    assert t.skipped == {"image file not found": 1}
    train = read_image_text_pairs(tmp_path / "dataset_coco.json", image_root=tmp_path, split="train")
    assert [p.image_id for p in train] == ["train2014/b.jpg"] and train.skipped["other splits"] == 2
    with pytest.raises(ConfigError, match="no captions in split"):
        read_image_text_pairs(tmp_path / "dataset_coco.json", image_root=tmp_path, split="restval")


def test_coco_official_json_and_folder(tmp_path):
    touch_images(tmp_path, ["val2017/000000000139.jpg"])
    ann = {"images": [{"id": 139, "file_name": "000000000139.jpg"}],
           "annotations": [{"image_id": 139, "caption": "A room. \n"}, {"image_id": 139, "caption": "Chairs"}]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text(json.dumps(ann))
    t = read_image_text_pairs(tmp_path)  # COCO folder: annotations/ beside val2017/
    assert [(p.image_id, p.caption, p.split) for p in t] == [
        ("val2017/000000000139.jpg", "A room.", "val2017"), ("val2017/000000000139.jpg", "Chairs", "val2017")]
    t2 = read_image_text_pairs(tmp_path / "annotations" / "captions_val2017.json", image_root=tmp_path)
    assert [p.image_path for p in t2] == [p.image_path for p in t]


def test_flickr8k_token_file_without_split_lists(tmp_path):
    touch_images(tmp_path / "imgs", ["1.jpg", "2.jpg"])
    (tmp_path / "Flickr8k.token.txt").write_text("1.jpg#0\tA boy .\n1.jpg#1\tA kid .\n2.jpg#0\tA dog .\n3.jpg#0\tGone .\n")
    t = read_image_text_pairs(tmp_path / "Flickr8k.token.txt", image_root=tmp_path / "imgs")
    assert [(p.image_id, p.caption) for p in t] == [("1.jpg", "A boy ."), ("1.jpg", "A kid ."), ("2.jpg", "A dog .")]
    assert t.skipped == {"image file not found": 1}
    (tmp_path / "Flickr8k.token.txt").write_text("1.jpg#0\tA boy .\n1.jpg A kid .\n")
    with pytest.raises(DataFormatError, match=r"Flickr8k.token.txt:2"):
        read_image_text_pairs(tmp_path / "Flickr8k.token.txt", image_root=tmp_path / "imgs")


def test_generic_jsonl_tsv_csv_and_bad_lines(tmp_path):
    touch_images(tmp_path / "images", ["x.png", "y.png"])
    (tmp_path / "pairs.jsonl").write_text('{"image": "x.png", "caption": "red"}\n\n'
                                          '{"image": "y.png", "caption": "blue", "split": "train"}\n')
    t = read_image_text_pairs(tmp_path / "pairs.jsonl")  # images/ beside the file is the default root
    assert [(p.image_id, p.caption, p.split) for p in t] == [("x.png", "red", None), ("y.png", "blue", "train")]
    (tmp_path / "pairs.tsv").write_text("caption\timage\nred\tx.png\nblue\ty.png\n")
    assert [p.caption for p in read_image_text_pairs(tmp_path / "pairs.tsv")] == ["red", "blue"]
    (tmp_path / "pairs.csv").write_text('image,caption,split\nx.png,"red, bright",train\n')
    assert read_image_text_pairs(tmp_path / "pairs.csv")[0].caption == "red, bright"

    (tmp_path / "bad.jsonl").write_text('{"image": "x.png", "caption": "red"}\n{"image": "y.png"}\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: .*'caption'"):
        read_image_text_pairs(tmp_path / "bad.jsonl")
    (tmp_path / "bad2.jsonl").write_text('{"image": "x.png", "caption": "red"}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"bad2.jsonl:2: invalid JSON"):
        read_image_text_pairs(tmp_path / "bad2.jsonl")
    (tmp_path / "bad.tsv").write_text("image\tcaption\nx.png\tred\ny.png\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:3: expected 2 fields"):
        read_image_text_pairs(tmp_path / "bad.tsv")
    (tmp_path / "nohead.tsv").write_text("path\ttext\nx.png\tred\n")
    with pytest.raises(DataFormatError, match=r"nohead.tsv:1"):
        read_image_text_pairs(tmp_path / "nohead.tsv")
    with pytest.raises(ConfigError, match="no image-caption pair"):
        read_image_text_pairs(tmp_path / "pairs.tsv", image_root=tmp_path)


def test_captions_per_image_is_seeded(tmp_path):
    touch_images(tmp_path / "images", ["a.jpg", "b.jpg"])
    lines = [{"image": im, "caption": f"{im} {k}"} for im in ("a.jpg", "b.jpg") for k in range(5)]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    one = read_image_text_pairs(tmp_path / "p.jsonl", captions_per_image=1, seed=3)
    assert len(one) == 2 and {p.image_id for p in one} == {"a.jpg", "b.jpg"}
    assert [p.caption for p in one] == [p.caption for p in read_image_text_pairs(tmp_path / "p.jsonl",
                                                                                   captions_per_image=1, seed=3)]
    assert len(read_image_text_pairs(tmp_path / "p.jsonl", captions_per_image=2)) == 4


def test_registered_set_needs_an_image_root(data_dir):
    with pytest.raises(ConfigError, match="image_root"):
        read_image_text_pairs("flickr8k", data_dir=data_dir)


def test_real_flickr8k_mini1000_train_split(data_dir):
    t = read_image_text_pairs(data_dir / "flickr8k_mini1000", split="train")
    assert len(t) == 3765 and len(t.images) == 753          # SOURCES.txt: train 753 images, 5 captions each
    test = read_image_text_pairs(data_dir / "flickr8k_mini1000", split="test")
    assert not set(t.images) & set(test.images)             # never a test image in training
    via_registry = read_image_text_pairs("flickr8k", image_root=data_dir / "flickr8k_mini1000" / "images",
                                         split="train", data_dir=data_dir)
    assert sorted((p.image_id, p.caption) for p in via_registry) == sorted((p.image_id, p.caption) for p in t)
