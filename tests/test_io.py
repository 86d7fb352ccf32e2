"""capcse.io: atomic writes give files the mode a plain open() would (0o666 minus the umask), not 0600."""

from __future__ import annotations

import os
import stat

import pytest

from capcse.io import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text, current_umask


@pytest.fixture
def umask():
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    written = [atomic_write_text(tmp_path / "a.txt", "x\n"), atomic_write_bytes(tmp_path / "b.bin", b"\0"),
               atomic_write_json(tmp_path / "c.json", {"a": 1})]
    with atomic_open(tmp_path / "d.txt") as fh:
        fh.write("y")
    written.append(tmp_path / "d.txt")
    plain = tmp_path / "plain.txt"
    plain.write_text("z")
    assert mode(plain) == expected  # what open() gives, for comparison
    assert {p.name: mode(p) for p in written} == {p.name: expected for p in written}
    assert (tmp_path / "a.txt").read_text() == "x\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, umask):
    target = tmp_path / "keep.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
