"""Fixtures for the caption tests: random-weight image-to-text models and folders of real images."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def flickr_images(data_dir) -> list[Path]:
    images = sorted((data_dir / "flickr8k_mini1000" / "images").glob("*.jpg"))
    if len(images) < 40:
        pytest.skip("flickr8k_mini1000 images not found")
    return images


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory, minilm_path) -> Path:
    from capcse.caption.random_models import save_random_blip

    return save_random_blip(tmp_path_factory.mktemp("tiny_blip"), vocab=minilm_path / "vocab.txt")


@pytest.fixture(scope="session")
def tiny_vit_bert(tmp_path_factory, minilm_path) -> Path:
    from capcse.caption.random_models import save_random_vit_bert

    return save_random_vit_bert(tmp_path_factory.mktemp("tiny_ved"), vocab=minilm_path / "vocab.txt")


@pytest.fixture(scope="session")
def tiny_git(tmp_path_factory, minilm_path) -> Path:
    from capcse.caption.random_models import save_random_git

    return save_random_git(tmp_path_factory.mktemp("tiny_git"), vocab=minilm_path / "vocab.txt")


def make_bad_files(folder: Path, good_jpeg: Path) -> dict[str, str]:
    """A corrupt JPEG, a truncated JPEG, a zero-byte file and a text file named .jpg, with the reason kind."""
    data = good_jpeg.read_bytes()
    (folder / "bad_corrupt.jpg").write_bytes(data[: len(data) // 2] + random.Random(0).randbytes(len(data) // 2))
    (folder / "bad_truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "bad_zero.jpg").write_bytes(b"")
    (folder / "bad_text.jpg").write_text("this is not an image\n")
    return {"bad_corrupt.jpg": "truncated or corrupt image", "bad_truncated.jpg": "truncated or corrupt image",
            "bad_zero.jpg": "empty file (0 bytes)", "bad_text.jpg": "not an image"}


@pytest.fixture
def image_folder(tmp_path, flickr_images) -> Path:
    """12 real Flickr8k JPEGs (two in a sub-folder) + 4 bad files."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i, src in enumerate(flickr_images[:12]):
        shutil.copy(src, folder / ("sub" if i >= 10 else "") / src.name)
    make_bad_files(folder, flickr_images[0])
    return folder
