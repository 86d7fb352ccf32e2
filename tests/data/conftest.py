"""Fixtures of the data tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def isolated_data_env(tmp_path, monkeypatch):
    """A private cache, no CAPCSE_DATA, no mirror, offline: nothing outside the test leaks in or out."""
    monkeypatch.setenv("CAPCSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("CAPCSE_DATA", raising=False)
    monkeypatch.delenv("CAPCSE_DATA_MIRROR", raising=False)
    monkeypatch.delenv("CAPCSE_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache"
