"""Image feature cache: computed once, reused (vision model not called again), invalidated when the
encoder (weights or preprocessing) changes, bad images reported."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from capcse.data.image_features import FeatureStore, ImageFeatureCache, encoder_identity
from capcse.models.image import ImageEncoder, PillowPreprocessor


class CountingBackbone(nn.Module):
    """A tiny conv net with random weights that counts the images it has seen."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.calls = 0
        self.images = 0

    def forward(self, x):
        self.calls += 1
        self.images += x.size(0)
        return self.conv(x).mean(dim=(2, 3))


def tiny_encoder(seed: int = 0, crop: int = 16) -> ImageEncoder:
    backbone = CountingBackbone(seed)
    return ImageEncoder(backbone, lambda b, x: b(x), PillowPreprocessor(crop + 2, crop), 4, "tiny-cnn", trainable=False)


@pytest.fixture
def images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(5):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(p)
        out.append((f"img{i}", str(p)))
    return out


def test_features_are_computed_once_and_reused(tmp_path, images):
    enc = tiny_encoder()
    cache = ImageFeatureCache(enc, tmp_path / "cache", batch_size=2)
    first = cache.features(images)
    assert enc.backbone.images == 5 and first.array.shape == (5, 4)
    assert isinstance(first.array, np.memmap)                      # memory-mapped, not loaded
    # the features are the encoder's own output for each image
    from PIL import Image
    with torch.inference_mode():
        direct = enc.encode_images([Image.open(p) for _, p in images]).numpy()
    np.testing.assert_allclose(np.asarray(first.array)[first.rows([k for k, _ in images])], direct, rtol=1e-5, atol=1e-6)

    calls, seen = enc.backbone.calls, enc.backbone.images
    for _epoch in range(2):                                        # later epochs / runs: no vision forward at all
        again = ImageFeatureCache(enc, tmp_path / "cache").features(images)
        assert enc.backbone.calls == calls
        np.testing.assert_array_equal(np.asarray(again.array), np.asarray(first.array))

    # new images only are computed, then appended
    more = images + [("extra", images[0][1])]
    table = ImageFeatureCache(enc, tmp_path / "cache").features(more)
    assert enc.backbone.images == seen + 1 and len(table) == 6
    np.testing.assert_allclose(table.array[table.index["extra"]], table.array[table.index["img0"]], rtol=1e-6)


def test_cache_is_invalidated_when_the_encoder_changes(tmp_path, images):
    enc = tiny_encoder(seed=0)
    t0 = ImageFeatureCache(enc, tmp_path / "cache").features(images)
    old_path = t0.path

    other_weights = tiny_encoder(seed=1)                          # same name, other weights
    assert encoder_identity(other_weights)["weights_sha256"] != encoder_identity(enc)["weights_sha256"]
    t1 = ImageFeatureCache(other_weights, tmp_path / "cache").features(images)
    assert other_weights.backbone.images == 5                     # recomputed
    assert t1.path != old_path and not old_path.exists()          # the stale store is gone
    assert not np.allclose(np.asarray(t1.array), np.asarray(t0.array))

    other_pre = tiny_encoder(seed=1, crop=12)                     # same weights, other preprocessing
    ImageFeatureCache(other_pre, tmp_path / "cache").features(images)
    assert other_pre.backbone.images == 5

    with torch.no_grad():                                          # weights edited in place: detected too
        other_pre.backbone.conv.weight.add_(1.0)
    ImageFeatureCache(other_pre, tmp_path / "cache").features(images)
    assert other_pre.backbone.images == 10


def test_bad_images_are_reported_not_lost(tmp_path, images):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    enc = tiny_encoder()
    table = ImageFeatureCache(enc, tmp_path / "cache").features(images + [("broken", str(bad)), ("empty", str(empty))])
    assert len(table) == 5
    assert set(table.failed) == {"broken", "empty"}
    assert "empty" in table.failed["empty"] and "not an image" in table.failed["broken"]
    meta = json.loads((table.path / "meta.json").read_text())
    assert set(meta["failed"]) == {"broken", "empty"}
    with pytest.raises(KeyError, match="broken"):
        table.rows(["broken"])
    calls = enc.backbone.calls                                     # failures are remembered, not retried
    ImageFeatureCache(enc, tmp_path / "cache").features(images + [("broken", str(bad))])
    assert enc.backbone.calls == calls


def test_feature_store_generic_and_atomic(tmp_path):
    store = FeatureStore(tmp_path, "teacher-x", {"name": "x", "weights_sha256": "abc"})
    seen = []

    def compute(keys):
        seen.append(list(keys))
        return np.array([[float(len(k)), 1.0] for k in keys], np.float32), list(keys), {}

    t = store.get_or_compute(["a", "bb", "a"], compute)
    assert t.keys == ["a", "bb"] and seen == [["a", "bb"]]
    t = store.get_or_compute(["bb", "ccc"], compute)
    assert seen[-1] == ["ccc"] and t.keys == ["a", "bb", "ccc"]
    np.testing.assert_array_equal(np.asarray(t.array)[:, 0], [1, 2, 3])

    def crash(keys):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.get_or_compute(["dddd"], crash)
    assert store.load().keys == ["a", "bb", "ccc"]                 # the old store is intact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_real_efficientnet_features_on_flickr8k(tmp_path, data_dir):
    """The offline default encoder on 4 real Flickr8k images (a few seconds on CPU)."""
    from capcse.models.image import load_image_encoder

    folder = data_dir / "flickr8k_mini1000" / "images"
    paths = sorted(folder.glob("*.jpg"))[:4]
    enc = load_image_encoder("efficientnet-lite0", trainable=False)
    table = ImageFeatureCache(enc, tmp_path).features([(p.name, str(p)) for p in paths])
    assert table.array.shape == (4, 1280) and np.isfinite(np.asarray(table.array)).all()
    assert table.identity["name"] == "efficientnet-lite0" and len(table.identity["weights_sha256"]) == 64


@pytest.mark.parametrize("tty", [True, False])
def test_feature_extraction_shows_a_bar_on_a_terminal_only(tmp_path, images, monkeypatch, capsys, tty):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)  # capsys's stream, told it is (not) a terminal
    ImageFeatureCache(tiny_encoder(), tmp_path / "cache", batch_size=2, num_workers=0).features(images)
    err = capsys.readouterr().err
    if tty:   # total and count of images, rate and ETA fields of tqdm
        assert "image features (tiny-cnn)" in err and "5/5" in err and "img/s" in err
    else:
        assert err == ""
