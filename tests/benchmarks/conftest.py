"""Benchmarks are scripts (benchmarks/<name>.py), not a package: load one as a module by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    def load(name: str):
        sys.path.insert(0, str(BENCH))  # a benchmark may import a sibling script
        try:
            spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        finally:
            sys.path.remove(str(BENCH))

    return load
