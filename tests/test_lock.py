"""requirements/lock.txt (the exact versions scripts/setup.sh and CI install) must agree with pyproject.toml:
every dependency of ``capcse[all]`` is pinned there with ``==`` at a version inside its pyproject range."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
packaging_requirements = pytest.importorskip("packaging.requirements")
from packaging.version import Version  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: dict, extras: tuple[str, ...] = ("all",)) -> list:
    """The requirements of the project with ``extras``, self-references (``capcse[a,b]``) expanded."""
    project = pyproject["project"]
    name = canonical(project["name"])
    optional = project.get("optional-dependencies", {})
    out, todo, seen = [], list(project["dependencies"]), set()
    for extra in extras:
        todo += optional[extra]
    while todo:
        req = packaging_requirements.Requirement(todo.pop(0))
        if canonical(req.name) == name:
            for extra in sorted(req.extras - seen):
                seen.add(extra)
                todo += optional[extra]
            continue
        out.append(req)
    return out


def read_lock(text: str) -> dict[str, Version]:
    pins = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"lock line {lineno}: not NAME==VERSION: {line!r}"
        pins[canonical(m.group(1))] = Version(m.group(2))
    return pins


def disagreements(pyproject: dict, lock: dict[str, Version]) -> list[str]:
    problems = []
    for req in project_requirements(pyproject):
        pinned = lock.get(canonical(req.name))
        if pinned is None:
            problems.append(f"{req.name}: not in the lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}: lock has {pinned}, pyproject wants {req.specifier}")
    return problems


def test_lock_pins_every_dependency_inside_its_range():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lock = read_lock((ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8"))
    assert disagreements(pyproject, lock) == []
    assert lock["torch"] == Version("2.13.0")  # the CPU wheel on this disk; CUDA builds share the pin
    assert "capcse" not in lock


def test_the_check_catches_a_missing_pin_and_a_pin_outside_the_range():
    pyproject = {"project": {"name": "capcse", "dependencies": ["torch>=2.1", "numpy>=1.24"],
                             "optional-dependencies": {"test": ["pytest>=7"], "all": ["capcse[test]"]}}}
    lock = read_lock("# comment\ntorch==2.0.1\nnumpy==2.4.6\n")
    assert disagreements(pyproject, lock) == ["torch: lock has 2.0.1, pyproject wants >=2.1",
                                             "pytest: not in the lock"]
    assert disagreements(pyproject, read_lock("torch==2.13.0\nnumpy==1.24.0\npytest==9.2.0\n")) == []
