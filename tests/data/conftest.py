"""Isolation for the data tests: a private cache, no mirror, no CAPCSE_DATA, downloads switched off by default."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPCSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("CAPCSE_DATA", raising=False)
    monkeypatch.delenv("CAPCSE_DATA_MIRROR", raising=False)
    monkeypatch.delenv("CAPCSE_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
