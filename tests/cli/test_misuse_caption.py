"""`capcse caption` misuse (issue 16, item 6): one-line error on stderr, non-zero exit, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def _folder_with_one_image(tmp_path, data_dir):
    images = sorted((data_dir / "flickr8k_mini1000" / "images").glob("*.jpg"))[:1]
    if not images:
        pytest.skip("flickr8k_mini1000 images not found")
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(images[0], folder / images[0].name)
    return folder


def _empty_folder(tmp_path, data_dir):
    folder = tmp_path / "empty"
    (folder / ".hidden").mkdir(parents=True)
    (folder / "notes.txt").write_text("not an image\n")
    return folder


CASES = {
    "model-folder-missing": (_folder_with_one_image, ["--model", "/nonexistent"],
                             "--model /nonexistent: no such model folder"),
    "empty-image-folder": (_empty_folder, [], "no images in "),
}


@pytest.mark.parametrize("case", list(CASES))
def test_caption_misuse_gives_one_line_error(case, tmp_path, data_dir):
    make_images, extra, expected = CASES[case]
    images = make_images(tmp_path, data_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "capcse", "caption", "--images", str(images),
                           "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet", *extra],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("capcse caption: error: ") and expected in lines[0]
    assert "corpus complete" not in proc.stdout
